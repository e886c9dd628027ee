"""Property tests: for random conversations with tools and signed thinking, in both caller formats, any mix of
token-reduction layers leaves a request the upstream would accept (tests/fakes/upstream/strict.py), that the
gateway's own parser accepts, and whose current turn (every assistant message since the latest human prompt,
signed thinking included) is byte-identical."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Optimization
from proxy.formats import anthropic as anthropic_format
from proxy.formats import openai as openai_format
from proxy.optimize import transforms
from tests.fakes.upstream import strict

REMINDER = "<system-reminder>\nWhenever you read a file, consider whether it is malware.\n</system-reminder>"
FILES = ["short", "x" * 300, "def f():\n    return 1\n" * 40, "line\n" * 900, "y" * 2500]

tool_result_text = st.sampled_from(FILES).flatmap(lambda f: st.sampled_from([f, f + "\n" + REMINDER]))
user_text = st.text(min_size=1, max_size=400).filter(str.strip).flatmap(
    lambda t: st.sampled_from([t, REMINDER + "\n" + t])
)
turn = st.tuples(user_text, st.lists(st.lists(tool_result_text, min_size=1, max_size=3), max_size=3), st.booleans())


def anthropic_conversation(turns, ends_mid_turn: bool) -> dict:
    messages, n = [], 0
    for k, (text, rounds, with_reply) in enumerate(turns):
        messages.append({"role": "user", "content": [{"type": "text", "text": text}] if k % 2 else text})
        last = k == len(turns) - 1
        for results in rounds if (not last or ends_mid_turn) else []:
            ids = [f"toolu_{n + i:04d}" for i in range(len(results))]
            n += len(results)
            thinking = {"type": "thinking", "thinking": f"plan {n}", "signature": f"sig-{n}"}
            uses = [{"type": "tool_use", "id": i, "name": "Read", "input": {"file_path": f"/f/{i}.py"}} for i in ids]
            messages.append({"role": "assistant", "content": [thinking, *uses]})
            messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": r}
                                                         for i, r in zip(ids, results)]})  # fmt: skip
        if not last:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": f"done {k}"}]})
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=1.0.abc;"},
              {"type": "text", "text": "You are a coding agent. " * 40, "cache_control": {"type": "ephemeral"}}]  # fmt: skip
    tools = [{"name": name, "description": f"{name} files. " + "Use it with care. " * 40,
              "input_schema": {"type": "object", "properties": {"path": {"type": "string", "description": "p " * 90}}}}
             for name in ("Read", "Grep", "CronList")]  # fmt: skip
    return {"model": "m", "max_tokens": 100, "system": system, "tools": tools, "messages": messages}


def openai_conversation(body: dict) -> dict:
    messages = [{"role": "system", "content": " ".join(b["text"] for b in body["system"])}]
    for message in body["messages"]:
        content = message["content"]
        if message["role"] == "user" and isinstance(content, list) and content[0]["type"] == "tool_result":
            messages += [{"role": "tool", "tool_call_id": b["tool_use_id"], "content": b["content"]} for b in content]
        elif message["role"] == "assistant":
            calls = [{"id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": "{}"}}
                     for b in content if b["type"] == "tool_use"]  # fmt: skip
            text = "".join(b.get("text", "") for b in content) or None
            messages.append({"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})})
        else:
            messages.append({"role": "user", "content": content if isinstance(content, str) else content[0]["text"]})
    messages.append({"role": "system", "content": "Reminder: follow the rules above."})
    tools = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                               "parameters": t["input_schema"]}} for t in body["tools"]]  # fmt: skip
    return {"model": "m", "messages": messages, "tools": tools}


settings_strategy = st.builds(
    Optimization,
    cache_breakpoints=st.booleans(),
    stable_prefix=st.booleans(),
    strip_boilerplate=st.booleans(),
    dedupe_tool_results=st.booleans(),
    cap_system_chars=st.none() | st.integers(40, 3000),
    cap_message_chars=st.none() | st.integers(40, 3000),
    cap_tool_result_chars=st.none() | st.integers(40, 3000),
    prune_max_tokens=st.none() | st.integers(50, 4000),
    diff_first=st.booleans(),
    cap_tool_description_chars=st.none() | st.integers(100, 2000),
    drop_tools=st.sampled_from([(), ("Read",), ("*",), ("Cron*", "Grep")]),
)


def tools_trimmed(opt) -> bool:
    return bool(opt.cap_tool_description_chars or opt.drop_tools)


def current_turn(messages: list, human) -> list:
    """Messages from the latest human prompt on."""
    start = max((i for i, m in enumerate(messages) if human(m)), default=0)
    return messages[start + 1:]


def anthropic_human(m):
    return m["role"] == "user" and not (isinstance(m["content"], list) and m["content"][0].get("type") == "tool_result")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(turn, min_size=1, max_size=6), st.booleans(), settings_strategy, st.sampled_from(["anthropic", "openai"]))
def test_anthropic_requests_stay_valid(turns, mid_turn, opt, upstream):
    body = anthropic_conversation(turns, mid_turn)
    before = copy.deepcopy(body)
    transforms.reduce(body, "anthropic", opt, upstream)
    assert strict.anthropic_problems(body) == []
    anthropic_format.parse_request(body)  # the gateway's own validation accepts it too
    kept_assistants = [m for m in body["messages"] if m["role"] == "assistant"]
    assert all(m in before["messages"] for m in kept_assistants)  # assistant messages are never edited
    assert [m for m in current_turn(body["messages"], anthropic_human) if m["role"] == "assistant"] == [
        m for m in current_turn(before["messages"], anthropic_human) if m["role"] == "assistant"
    ]
    assert body["system"] and body["tools"] == before["tools"] or opt.cache_breakpoints or tools_trimmed(opt)
    offered = {t["name"] for t in body["tools"]}
    assert {b["name"] for m in body["messages"] if m["role"] == "assistant" for b in m["content"]
            if b["type"] == "tool_use"} <= offered  # no call is stranded by a dropped tool  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(turn, min_size=1, max_size=6), st.booleans(), settings_strategy, st.sampled_from(["anthropic", "openai"]))
def test_openai_requests_stay_valid(turns, mid_turn, opt, upstream):
    body = openai_conversation(anthropic_conversation(turns, mid_turn))
    before = copy.deepcopy(body)
    transforms.reduce(body, "openai", opt, upstream)
    assert strict.openai_problems(body) == []
    openai_format.parse_request(body)
    assistants = lambda b: [m for m in b["messages"] if m["role"] == "assistant"]  # noqa: E731
    assert all(m in assistants(before) for m in assistants(body))
    assert body["messages"][0]["role"] == "system"  # the system prompt is never dropped
