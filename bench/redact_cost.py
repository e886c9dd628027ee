"""What redaction costs per request: CPU time of the request step (proxy/redact.py `outbound`) on real captures.

    .venv/bin/python -m bench.redact_cost [--n 300]

For each body (a Claude Code capture in tests/fixtures, and the largest request of the recorded Claude Code
session), with every rule on (mask): the median over 5 rounds of this thread's CPU time (time.thread_time) per
request, "first seen" (every text scanned: the memo disabled) and "next turn" (the body parsed again from JSON, so
every string is a new object, as in a real follow-up: the texts the project's memo already scanned are looked up).
With every rule off the step is not called: core.run pays one `key.redact is None`.
"""

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ("claude-code/messages-tool-result-turn.json", "claude-code/messages-custom-model-sonnet.json")


def bodies() -> list[tuple[str, str, dict]]:
    from proxy.optimize.transforms.shape import slots

    from . import replay_savings

    out = [(name, "anthropic", json.loads((ROOT / "tests/fixtures" / name).read_text())["body"]) for name in CAPTURES]
    fmt, big = max(replay_savings.claude_code_recorded(), key=lambda fb: sum(len(h[k]) for *_, h, k, _ in slots(*fb[::-1])))
    return [*out, ("sessions/claude-code-recorded.json (largest request)", fmt, big)]


def cpu_us(fn, n: int) -> float:
    rounds = []
    for _ in range(5):
        start = time.thread_time()
        for _ in range(n):
            fn()
        rounds.append((time.thread_time() - start) / n * 1e6)
    return statistics.median(rounds)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    import django

    django.setup()
    from accounts.models import REDACTION_RULES, Redaction
    from proxy import redact
    from proxy.optimize.transforms.shape import slots

    view = Redaction(tuple((rule, "mask") for rules in REDACTION_RULES.values() for rule in rules))
    call = SimpleNamespace(key=SimpleNamespace(redact=view, project_id=0, project_slug="bench"))
    rules = redact.rules_for(call.key)
    for name, fmt, body in bodies():
        chars = sum(len(holder[key]) for *_, holder, key, _ in slots(body, fmt))
        raw = json.dumps(body)
        rules.SEEN_MIN = 10**12  # first seen: no memo
        cold = cpu_us(lambda: redact.outbound(call, copy.deepcopy(body), fmt, {}), args.n) - cpu_us(
            lambda: copy.deepcopy(body), args.n)  # fmt: skip
        rules.SEEN_MIN = redact.RuleSet.SEEN_MIN
        redact.outbound(call, json.loads(raw), fmt, {})
        warm = cpu_us(lambda: redact.outbound(call, json.loads(raw), fmt, {}), args.n) - cpu_us(
            lambda: json.loads(raw), args.n)  # fmt: skip
        print(f"{name}: {chars} characters of text; first seen {cold:.0f} µs, next turn {warm:.0f} µs CPU per request")


if __name__ == "__main__":
    main()
