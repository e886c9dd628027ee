"""`manage.py replay_savings` on the recorded sessions: every request answered, and the issue's target met: all
layers together cost at least 50% less than no layer on the Claude Code session to an Anthropic upstream."""

import re
from io import StringIO

from django.core.management import call_command


def test_all_layers_halve_the_claude_code_sessions_cost(tmp_path):
    out = StringIO()
    call_command("replay_savings", "--session", "claude-code", stdout=out)
    table = out.getvalue()
    rows = {tuple(line.split()[:3]): line.split() for line in table.splitlines()[1:] if line.strip()}
    assert len(rows) == 20 and "failed" not in table
    none, everything = rows[("claude-code", "anthropic", "none")], rows[("claude-code", "anthropic", "all")]
    assert none[3] == everything[3] == "14"
    change = float(re.sub(r"[%+]", "", everything[-1]))
    assert change <= -50, table
    assert float(everything[-2]) <= float(none[-2]) / 2
    breakpoints = rows[("claude-code", "anthropic", "breakpoints")]
    assert int(breakpoints[5].replace(",", "")) > int(none[5].replace(",", ""))  # more read from the cache
