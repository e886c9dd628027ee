"""Token-reduction layers: each rewrites the caller's request body in place, in the caller's own format (so the
Anthropic pass-through path, which never builds the canonical model, is reduced like a translated one).

    LAYERS, in the order they run     the project setting that turns it on
    stable_prefix  prefix.py          stable_prefix
    tools          tools.py           cap_tool_description_chars / drop_tools
    boilerplate    boilerplate.py     strip_boilerplate (+ boilerplate_markers)
    dedupe         dedupe.py          dedupe_tool_results
    caps           caps.py            cap_system_chars / cap_message_chars / cap_tool_result_chars
    prune          prune.py           prune_max_tokens
    diff_first     diff_first.py      diff_first (+ diff_first_text)
    breakpoints    breakpoints.py     cache_breakpoints (last: it marks the final positions)

A layer is `apply(body, fmt, opt, upstream) -> int | None`: fmt is "anthropic", "openai" or "responses" (the
caller's format: Messages, Chat Completions or the Responses API's raw body, `instructions` + `input` items),
opt the project's accounts.models.Optimization, upstream the kind of the route's first provider. It returns
None when it changed nothing, else the characters it removed (0 for a layer that only adds, such as
breakpoints). Rules every layer keeps (tests/unit/test_transforms_properties.py and, for Responses,
test_transforms_properties_responses.py check them on random conversations): assistant messages untouched
(signed thinking included; Responses: assistant, function_call and reasoning items byte-identical), every
tool_use keeps its tool_result (function_call its function_call_output), roles still alternate as the upstream
requires, no text block left empty. shape.slots gives a layer the text it may edit in any of the formats.

How to add a layer: a module here with `apply`, a setting on accounts.models.ProjectOptimization (+ its
Optimization field, its config-file key in accounts/config.py and a line in the admin fieldset), and a row in
LAYERS below; then a case in the property test's layer list and a line in the README's "Cost optimization".
"""

from . import boilerplate, breakpoints, caps, dedupe, diff_first, prefix, prune, tools
from .shape import tokens

LAYERS = (
    ("stable_prefix", prefix.apply, lambda o: o.stable_prefix),
    ("tools", tools.apply, lambda o: bool(o.cap_tool_description_chars or o.drop_tools)),
    ("boilerplate", boilerplate.apply, lambda o: o.strip_boilerplate),
    ("dedupe", dedupe.apply, lambda o: o.dedupe_tool_results),
    ("caps", caps.apply, lambda o: bool(o.cap_system_chars or o.cap_message_chars or o.cap_tool_result_chars)),
    ("prune", prune.apply, lambda o: bool(o.prune_max_tokens)),
    ("diff_first", diff_first.apply, lambda o: o.diff_first),
    ("breakpoints", breakpoints.apply, lambda o: o.cache_breakpoints),
)
FORMATS = ("anthropic", "openai", "responses")


def reduce(body: dict, fmt: str, opt, upstream: str) -> tuple[list[str], int]:
    """Run every layer the project turned on; -> (names of the layers that changed the body, tokens saved)."""
    if fmt not in FORMATS:
        return [], 0
    changed, saved = [], 0
    for name, apply, enabled in LAYERS:
        if enabled(opt):
            chars = apply(body, fmt, opt, upstream)
            if chars is not None:
                changed.append(name)
                saved += chars
    return changed, tokens(saved)
