"""Property tests for OpenAI Responses callers (Codex's shape): for random conversations with developer messages,
function and custom tool calls, reasoning items carrying encrypted_content (OpenAI's own, and the gateway's seal
of signed thinking), any mix of token-reduction layers leaves an `input` OpenAI would accept
(tests/fakes/upstream/strict.py), that the gateway's own parser accepts and translates into Anthropic and Chat
requests those upstreams would accept, with every assistant-side item (assistant messages, calls, reasoning)
byte-identical, every call still answered, every system-side item kept and no text left empty.
The layer settings are the Anthropic/OpenAI property test's, so a new layer is mixed in here too."""

import copy

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import responses_store
from proxy.canonical import TargetOptions, Thinking
from proxy.formats import anthropic as anthropic_format
from proxy.formats import openai as openai_format
from proxy.formats import responses as responses_format
from proxy.formats.responses import reasoning
from proxy.optimize import transforms
from proxy.optimize.transforms.shape import slots
from tests.fakes.upstream import strict
from tests.unit.test_transforms_properties import FILES, REMINDER, settings_strategy, user_text

SECRET = b"property test secret"
ASSISTANT_SIDE = ("function_call", "custom_tool_call", "reasoning")
CODEX_PROMPT = "You are Codex, a coding agent. " * 60
PATCH = "*** Begin Patch\n*** Update File: a.py\n" + "+line\n" * 60 + "*** End Patch"  # long: an edit would show

output = st.sampled_from(FILES).flatmap(  # a string, or input_text parts (Codex's custom tool outputs)
    lambda f: st.sampled_from([f, f + "\n" + REMINDER, [{"type": "input_text", "text": f}, {"type": "input_text", "text": "k"}]])
)
call = st.tuples(st.sampled_from(["function_call", "custom_tool_call"]), output)
turn = st.tuples(user_text, st.lists(st.lists(call, min_size=1, max_size=3), max_size=3), st.booleans(), st.booleans())
preamble = st.fixed_dictionaries({
    "instructions": st.sampled_from([None, "Be brief.", "Be brief. " * 200]),
    "additional_tools": st.booleans(),
    "developer_mid": st.booleans(),
})  # fmt: skip


def reasoning_item(n: int, sealed: bool) -> dict:
    token = reasoning.seal([Thinking(f"plan {n}", signature=f"sig-{n}")]) if sealed else f"gAAAAB-openai-{n}=="
    return {"type": "reasoning", "id": f"rs_{n}", "summary": [{"type": "summary_text", "text": f"plan {n}"}],
            "encrypted_content": token}  # fmt: skip


def call_items(kind: str, result, call_id: str) -> list[dict]:
    if kind == "function_call":
        made = {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "name": "exec_command",
                "arguments": orjson.dumps({"cmd": f"cat {call_id}"}).decode(), "status": "completed"}  # fmt: skip
    else:
        made = {"type": "custom_tool_call", "id": f"ctc_{call_id}", "call_id": call_id, "name": "apply_patch",
                "input": PATCH, "status": "completed"}  # fmt: skip
    return [made, {"type": f"{kind}_output", "call_id": call_id, "output": result}]


def responses_conversation(turns, ends_mid_turn: bool, pre: dict) -> dict:
    items = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": CODEX_PROMPT}]}]
    if pre["additional_tools"]:
        items.insert(0, {"type": "additional_tools", "role": "developer", "tools": copy.deepcopy(TOOLS)})
    items.append({"type": "message", "role": "user", "content": "<environment_context>cwd</environment_context>"})
    n = 0
    for k, (text, rounds, with_reply, sealed) in enumerate(turns):
        content = [{"type": "input_text", "text": text}] if k % 2 else text
        items.append({"type": "message", "role": "user", "content": content})
        last = k == len(turns) - 1
        for calls in rounds if (not last or ends_mid_turn) else []:
            n += 1
            items.append(reasoning_item(n, sealed))
            made = [call_items(kind, result, f"call_{n}_{j}") for j, (kind, result) in enumerate(calls)]
            items += [m[0] for m in made] + [m[1] for m in made]  # parallel calls, then their outputs
        if not last:
            n += 1
            items += [reasoning_item(n, sealed)] if with_reply else []
            items.append({"type": "message", "role": "assistant", "id": f"msg_{k}",
                          "content": [{"type": "output_text", "text": f"done {k}", "annotations": []}]})  # fmt: skip
        if pre["developer_mid"] and k == 0:
            items.append({"type": "message", "role": "developer", "content": "<multi_agent_mode>off</multi_agent_mode>"})
    body = {"model": "m", "input": items, "tools": copy.deepcopy(TOOLS), "store": False}
    if pre["instructions"] is not None:
        body["instructions"] = pre["instructions"]
    return body


TOOLS = [
    {"type": "function", "name": "exec_command", "description": "Runs a command. " * 30, "strict": False,
     "parameters": {"type": "object", "properties": {"cmd": {"type": "string", "description": "c " * 80}}}},
    {"type": "custom", "name": "apply_patch", "description": "Edit files. " * 20, "format": {"type": "text"}},
    {"type": "function", "name": "CronList", "description": "List jobs.", "parameters": {"type": "object"}},
]  # fmt: skip


def assistant_side(items: list) -> list[bytes]:
    return [orjson.dumps(i) for i in items if i.get("type") in ASSISTANT_SIDE or i.get("role") == "assistant"]


def current_turn(items: list) -> list[bytes]:
    start = max(i for i, item in enumerate(items) if item.get("role") == "user")
    return assistant_side(items[start + 1:])


def untooled(item: dict) -> dict:
    """A developer item without what layers may change on it: the tool definitions the tools layer may trim, and
    the breakpoints layer's mark (with the string it may have made one input_text part); the rest must stay."""
    out = {k: v for k, v in item.items() if k != "tools"}
    content = out.get("content")
    if isinstance(content, list):
        parts = [{k: v for k, v in p.items() if k != "cache_control"} for p in content]
        out["content"] = parts[0]["text"] if len(parts) == 1 and parts[0].get("type") == "input_text" else parts
    return out


def system_side(body: dict) -> list[bytes]:
    return [orjson.dumps(i) for i in body["input"] if i.get("role") == "developer"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(turn, min_size=1, max_size=6), st.booleans(), preamble, settings_strategy,
       st.sampled_from(["anthropic", "openai", "openai_responses"]))  # fmt: skip
def test_responses_requests_stay_valid(turns, mid_turn, pre, opt, upstream):
    reasoning.configure(SECRET)
    try:
        body = responses_conversation(turns, mid_turn, pre)
        before = copy.deepcopy(body)
        transforms.reduce(body, "responses", opt, upstream)
        assert strict.responses_problems(body) == []
        kept = assistant_side(body["input"])
        assert set(kept) <= set(assistant_side(before["input"]))  # never edited, only dropped by whole turns
        assert current_turn(body["input"]) == current_turn(before["input"])
        assert [untooled(i) for i in before["input"] if i.get("role") == "developer"] == [
            untooled(i) for i in body["input"]
            if i.get("role") == "developer" and untooled(i).get("content") != opt.diff_first_text.strip()
        ] or opt.cap_system_chars  # system-side items are never dropped (caps may shorten their text)
        called = {i["name"] for i in body["input"] if i.get("type") in ("function_call", "custom_tool_call")}
        for holder in [body] + [i for i in body["input"] if i.get("type") == "additional_tools"]:
            assert called <= {t["name"] for t in holder["tools"]}  # no call stranded by a dropped tool
        assert all(holder[key] for _kind, _i, holder, key, _id in slots(body, "responses"))  # no text left empty
        assert "instructions" in body or "instructions" not in before
        request = responses_format.parse_request(body)  # the gateway's own parser accepts it
        target = TargetOptions("remote")
        assert strict.anthropic_problems(anthropic_format.render_request(request, target)) == []
        assert strict.openai_problems(openai_format.render_request(request, target)) == []
    finally:
        responses_store.configure()  # the process's own sealing key again
