"""Each token-reduction layer, smart routing and the cache key on the real clients' captured requests
(tests/fixtures) and on small hand-made ones."""

import copy
import json
from pathlib import Path

import pytest

from accounts.models import Optimization
from proxy.formats import anthropic as anthropic_format
from proxy.formats import openai as openai_format
from proxy.optimize import cache, smart_routing, transforms
from proxy.optimize.transforms import breakpoints, caps
from tests.fakes.upstream import strict

SHARED = Path(__file__).resolve().parent.parent / "fixtures"


def captured(name: str) -> dict:
    return json.loads((SHARED / name).read_text())["body"]


@pytest.fixture
def claude_code():
    return captured("claude-code/messages-tool-result-turn.json")


@pytest.fixture
def aider():
    return captured("openai-clients/aider-chat.json")


def marks(body) -> list[str]:
    where = [f"tools[{i}]" for i, t in enumerate(body.get("tools") or []) if "cache_control" in t]
    system = body.get("system")
    where += [f"system[{i}]" for i, b in enumerate(system) if "cache_control" in b] if isinstance(system, list) else []
    for i, m in enumerate(body["messages"]):
        content = m["content"] if isinstance(m["content"], list) else []
        where += [f"messages[{i}][{j}]" for j, b in enumerate(content) if "cache_control" in b]
    return where


def test_breakpoints_keep_claude_codes_own_and_add_one_on_the_tools(claude_code):
    own = marks(claude_code)
    assert len(own) == 3  # system[1], system[2], the last tool_result
    names, _ = transforms.reduce(claude_code, "anthropic", Optimization(cache_breakpoints=True), "anthropic")
    assert names == ["breakpoints"]
    assert marks(claude_code) == [f"tools[{len(claude_code['tools']) - 1}]", *own]
    assert strict.anthropic_problems(claude_code) == []


def test_breakpoints_mark_an_openai_callers_system_and_latest_turns_for_an_anthropic_upstream(aider):
    transforms.reduce(aider, "openai", Optimization(cache_breakpoints=True), "anthropic")
    chat = openai_format.parse_request(aider)
    assert chat.messages[0].role == "system" and chat.messages[0].content[0].cache_control == {"type": "ephemeral"}
    user_marks = [b.cache_control for m in chat.messages if m.role == "user" for b in m.content if b.cache_control]
    assert len(user_marks) == 3  # the latest three user turns: the latest writes, the earlier are read back
    untouched = captured("openai-clients/aider-chat.json")
    assert transforms.reduce(untouched, "openai", Optimization(cache_breakpoints=True), "openai") == ([], 0)


def test_stable_prefix_drops_the_billing_line_only_when_translating(claude_code):
    for_anthropic = copy.deepcopy(claude_code)
    assert transforms.reduce(for_anthropic, "anthropic", Optimization(stable_prefix=True), "anthropic") == ([], 0)
    names, saved = transforms.reduce(claude_code, "anthropic", Optimization(stable_prefix=True), "openai")
    assert names == ["stable_prefix"] and saved > 0
    assert not claude_code["system"][0]["text"].startswith("x-anthropic-billing-header")
    assert claude_code["system"] == for_anthropic["system"][1:]


def test_boilerplate_strips_the_read_reminder_and_aiders_closing_reminder(aider):
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "read it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": "1\tcode\n\n<system-reminder>\nmalware note\n</system-reminder>\n"}]},
    ]}  # fmt: skip
    names, _ = transforms.reduce(body, "anthropic", Optimization(strip_boilerplate=True), "anthropic")
    assert names == ["boilerplate"] and body["messages"][2]["content"][0]["content"] == "1\tcode"
    assert aider["messages"][-1]["role"] == "system"
    transforms.reduce(aider, "openai", Optimization(strip_boilerplate=True), "openai")
    assert aider["messages"][-1]["role"] == "user" and aider["messages"][0]["role"] == "system"


def test_project_markers_extend_the_list(claude_code):
    opt = Optimization(strip_boilerplate=True, markers=("<system-reminder> ... </system-reminder>",))
    first_user = claude_code["messages"][0]["content"][0]["text"]
    assert first_user.startswith("<system-reminder>")
    transforms.reduce(claude_code, "anthropic", opt, "anthropic")
    assert "<system-reminder>" not in claude_code["messages"][0]["content"][0]["text"]


def test_caps_cut_the_middle_with_a_marker():
    text = "A" * 500 + "B" * 500
    cut = caps.cut(text, 200)
    assert len(cut) <= 200 and cut.startswith("A") and cut.endswith("B") and "characters cut by the gateway" in cut
    body = {"model": "m", "max_tokens": 1, "system": "S" * 900, "messages": [{"role": "user", "content": text}]}
    names, saved = transforms.reduce(body, "anthropic", Optimization(cap_system_chars=300, cap_message_chars=200), "x")
    assert names == ["caps"] and len(body["system"]) <= 300 and len(body["messages"][0]["content"]) <= 200
    assert saved == (900 - len(body["system"]) + 1000 - len(body["messages"][0]["content"])) // 4


def test_dedupe_replaces_a_repeated_file_with_a_reference_to_the_first_read():
    content = "1\tdef main():\n" * 40
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "go"}]}
    for n in (1, 2):
        body["messages"] += [
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"t{n}", "name": "Read", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{n}", "content": content}]},
        ]
    names, saved = transforms.reduce(body, "anthropic", Optimization(dedupe_tool_results=True), "anthropic")
    second = body["messages"][4]["content"][0]["content"]
    assert names == ["dedupe"] and "t1" in second and len(second) < 120 and saved > 100
    assert body["messages"][2]["content"][0]["content"] == content


def test_prune_drops_the_oldest_turns_with_a_note_and_keeps_the_system_prompt(claude_code):
    history = []
    for n in range(6):
        history += [{"role": "user", "content": f"question {n} " + "words " * 2000},
                    {"role": "assistant", "content": [{"type": "text", "text": f"answer {n}"}]}]  # fmt: skip
    claude_code["messages"] = history + claude_code["messages"]
    system = copy.deepcopy(claude_code["system"])
    names, saved = transforms.reduce(claude_code, "anthropic", Optimization(prune_max_tokens=25_000), "anthropic")
    assert names == ["prune"] and saved > 5000
    first = claude_code["messages"][0]
    note = first["content"] if isinstance(first["content"], str) else first["content"][0]["text"]
    assert note.startswith("[gateway: ") and "earlier messages dropped" in note
    assert claude_code["system"] == system and any(m["role"] == "system" for m in claude_code["messages"])
    assert strict.anthropic_problems(claude_code) == []
    anthropic_format.parse_request(claude_code)


def test_diff_first_appends_after_the_clients_cached_prefix(claude_code, aider):
    transforms.reduce(claude_code, "anthropic", Optimization(diff_first=True), "anthropic")
    assert "unified diff" in claude_code["system"][-1]["text"] and "cache_control" in claude_code["system"][-2]
    transforms.reduce(aider, "openai", Optimization(diff_first=True), "openai")
    assert aider["messages"][1]["role"] == "system" and "unified diff" in aider["messages"][1]["content"]


def test_breakpoints_never_exceed_four_with_every_layer_on(claude_code):
    opt = Optimization(cache_breakpoints=True, stable_prefix=True, strip_boilerplate=True, dedupe_tool_results=True,
                       cap_tool_result_chars=1000, prune_max_tokens=100_000, diff_first=True)  # fmt: skip
    names, _ = transforms.reduce(claude_code, "anthropic", opt, "anthropic")
    assert "breakpoints" in names and len(marks(claude_code)) == breakpoints.MAX


# --- smart routing --------------------------------------------------------------------------------------------


def route(body, **settings):
    return smart_routing.choose(Optimization(**settings), body, 0)


def test_claude_code_scenarios():
    haiku = captured("claude-code/messages-subagent-haiku.json")
    main = captured("claude-code/messages-first-turn.json")
    assert route(haiku, route_background="cheap") == ("cheap", "background")
    assert route(main, route_background="cheap", route_think="deep") == ("deep", "think")  # adaptive thinking
    assert route(main, route_long_context="long", long_context_tokens=10_000) == ("long", "long_context")
    assert route(main, route_web_search="web") == ("web", "web_search")  # Claude Code sends a WebSearch tool
    assert route(main, route_default="usual") == ("usual", "default")
    assert route(main) == (None, "")


def test_complexity_score_routes_hard_prompts_to_the_strong_model():
    def body(text):
        return {"model": "m", "messages": [{"role": "user", "content": text}]}

    keywords = ("architect", "security", "migration")
    strong = dict(route_complex="strong", complexity_threshold=5, keywords=keywords)
    hard = "Review the security of auth/login.py and plan the schema migration in db/models.py"
    assert smart_routing.complexity(body(hard), keywords) >= 5
    assert route(body(hard), **strong) == ("strong", "complex")
    assert route(body("rename a variable"), **strong) == (None, "")


# --- the response cache key ----------------------------------------------------------------------------------


def test_cache_key_ignores_stream_metadata_and_the_billing_line(claude_code):
    claude_code["temperature"] = 0
    key = cache.cache_key(1, "anthropic", "a", claude_code, False)
    other = copy.deepcopy(claude_code)
    other.update(stream=False, metadata={"user_id": "x"})
    other["system"][0]["text"] = "x-anthropic-billing-header: cc_version=9.9.9.fff;"
    assert cache.cache_key(1, "anthropic", "a", other, False) == key
    assert cache.cache_key(2, "anthropic", "a", claude_code, False) != key
    other["messages"][-1]["content"][0]["content"] = "changed"
    assert cache.cache_key(1, "anthropic", "a", other, False) != key
    del claude_code["temperature"]
    assert cache.cache_key(1, "anthropic", "a", claude_code, False) is None
    assert cache.cache_key(1, "anthropic", "a", claude_code, True) is not None


def test_a_complete_answer_survives_the_trip_through_stream_events():
    chat = anthropic_format.parse_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    wire = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
            "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 3},
            "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"}, {"type": "text", "text": "hi"},
                        {"type": "tool_use", "id": "t", "name": "f", "input": {"a": [1, 2]}}]}  # fmt: skip
    resp = anthropic_format.parse_response(wire, chat)
    assert cache.assemble(list(cache.events_of(resp))) == resp
