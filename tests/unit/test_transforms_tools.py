"""Tool trimming (proxy/optimize/transforms/tools.py) on Claude Code's captured 24 tools, on an OpenAI caller's
tools and on a Responses caller's: what is cut, what is never touched, and that a second pass changes nothing
(the cached prefix must be byte-identical on every turn)."""

import copy
import json
from pathlib import Path

from accounts.models import Optimization
from proxy.formats import anthropic as anthropic_format
from proxy.formats import openai as openai_format
from proxy.optimize import transforms
from proxy.optimize.transforms import tools
from tests.fakes.upstream import strict

SHARED = Path(__file__).resolve().parent.parent / "fixtures"


def claude_code() -> dict:
    return json.loads((SHARED / "claude-code/messages-tool-result-turn.json").read_text())["body"]


def schemas(body: dict) -> list:
    """Each tool with every description taken out: what must survive trimming unchanged."""

    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
        return [strip(x) for x in node] if isinstance(node, list) else node

    return [strip(t) for t in body["tools"]]


def test_descriptions_are_cut_at_a_boundary_and_names_and_schemas_stay():
    body, before = claude_code(), claude_code()
    names, saved = transforms.reduce(body, "anthropic", Optimization(cap_tool_description_chars=500), "anthropic")
    assert names == ["tools"]
    assert saved > 7000  # Claude Code's descriptions are ~45k characters; at 500 each ~35k go
    assert [t["name"] for t in body["tools"]] == [t["name"] for t in before["tools"]]
    assert schemas(body) == schemas(before)
    for tool, original in zip(body["tools"], before["tools"]):
        text = tool["description"]
        assert len(text) <= 500
        if len(original["description"]) <= 500:
            assert text == original["description"]
        else:
            assert text.endswith(tools.MARK) and original["description"].startswith(text[: -len(tools.MARK)])
    assert body["messages"] == before["messages"] and body["system"] == before["system"]
    assert strict.anthropic_problems(body) == []
    anthropic_format.parse_request(body)


def test_a_second_pass_changes_nothing_so_the_prefix_stays_cached():
    body = claude_code()
    opt = Optimization(cap_tool_description_chars=300, drop_tools=("Cron*",))
    transforms.reduce(body, "anthropic", opt, "anthropic")
    once = copy.deepcopy(body)
    assert transforms.reduce(body, "anthropic", opt, "anthropic") == ([], 0)
    assert body == once


def test_shorten_prefers_paragraphs_then_sentences():
    text = "Reads a file.\n\nUsage: give an absolute path. It returns lines.\n\n" + "x" * 400
    assert tools.shorten(text, 80) == "Reads a file.\n\nUsage: give an absolute path. It returns lines." + tools.MARK
    assert tools.shorten("First sentence here. Second one is long " + "y" * 100, 60) == (
        "First sentence here." + tools.MARK
    )
    assert tools.shorten("no sentence ends in these many words " * 5, 60) == (
        "no sentence ends in these many words no sentence ends" + tools.MARK
    )
    assert tools.shorten("short", 100) == "short"


def test_parameter_descriptions_are_cut_but_data_named_description_is_not():
    tool = {"name": "t", "description": "ok", "input_schema": {"type": "object", "properties": {
        "path": {"type": "string", "description": "p " * 200},
        "description": {"type": "string", "default": "d " * 200, "description": "the PR body"},
        "mode": {"enum": ["a"], "examples": [{"description": "e " * 200}]},
    }}}  # fmt: skip
    body = {"model": "m", "max_tokens": 5, "tools": [tool], "messages": [{"role": "user", "content": "hi"}]}
    transforms.reduce(body, "anthropic", Optimization(cap_tool_description_chars=100), "anthropic")
    props = body["tools"][0]["input_schema"]["properties"]
    assert len(props["path"]["description"]) <= 100
    assert props["description"]["default"] == "d " * 200 and props["description"]["description"] == "the PR body"
    assert props["mode"]["examples"] == [{"description": "e " * 200}]


def test_drop_keeps_tools_the_conversation_calls_forced_or_marked():
    body = claude_code()
    used = {b["name"] for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
            if b.get("type") == "tool_use"}  # fmt: skip
    assert used  # the capture's turn answers a tool call
    body["tools"][-1]["cache_control"] = {"type": "ephemeral"}
    marked = body["tools"][-1]["name"]
    opt = Optimization(drop_tools=("*",))
    names, saved = transforms.reduce(body, "anthropic", opt, "anthropic")
    assert names == ["tools"] and saved > 0
    assert {t["name"] for t in body["tools"]} == used | {marked}
    assert strict.anthropic_problems(body) == []


def test_drop_never_leaves_an_empty_tool_list():
    body = {"model": "m", "max_tokens": 5, "tools": [{"name": "CronList", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    assert transforms.reduce(body, "anthropic", Optimization(drop_tools=("Cron*",)), "anthropic") == ([], 0)
    assert len(body["tools"]) == 1


def test_openai_callers_tools_and_tool_calls():
    body = {"model": "gpt", "tool_choice": {"type": "function", "function": {"name": "forced"}}, "tools": [
        {"type": "function", "function": {"name": n, "description": "D. " * 100, "parameters": {"type": "object"}}}
        for n in ("read", "CronA", "CronB", "forced")], "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "CronB", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"}]}  # fmt: skip
    names, _ = transforms.reduce(body, "openai", Optimization(drop_tools=("Cron*", "forced"),
                                                              cap_tool_description_chars=120), "openai")  # fmt: skip
    assert names == ["tools"]
    assert [t["function"]["name"] for t in body["tools"]] == ["read", "CronB", "forced"]
    assert all(len(t["function"]["description"]) <= 120 for t in body["tools"])
    openai_format.parse_request(body)


def test_responses_callers_tools():
    body = {"model": "gpt", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}], "tools": [
        {"type": "function", "name": n, "description": "Runs. " * 100, "parameters": {"type": "object"}}
        for n in ("shell", "view_image", "update_plan")] + [{"type": "web_search"}]}  # fmt: skip
    changed = tools.apply(body, "responses", Optimization(drop_tools=("shell", "view_*"),
                                                          cap_tool_description_chars=200), "openai")  # fmt: skip
    assert changed
    assert [t.get("name") for t in body["tools"]] == ["shell", "update_plan", None]
    assert all(len(t.get("description", "")) <= 200 for t in body["tools"])


def test_malformed_schemas_are_left_alone_not_a_crash():
    odd = {"type": "object", "properties": "x", "items": ["a"], "anyOf": {"a": 1}, "$defs": [1],
           "description": 7, "not": None}  # fmt: skip
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "t", "description": "d " * 300, "input_schema": copy.deepcopy(odd)}, "junk", None]}
    names, _ = transforms.reduce(body, "anthropic", Optimization(cap_tool_description_chars=100,
                                                                 drop_tools=("zz",)), "anthropic")  # fmt: skip
    assert names == ["tools"] and body["tools"][0]["input_schema"] == odd and body["tools"][1:] == ["junk", None]


def test_codex_lite_namespace_tools_in_the_additional_tools_item():
    capture = json.loads((SHARED / "codex/requests/lite-2.json").read_text())["body"]
    (item,) = [i for i in capture["input"] if i.get("type") == "additional_tools"]
    called = {i.get("namespace") for i in capture["input"] if i.get("type") == "custom_tool_call"}
    assert called == {"functions"}  # the turn after the model called functions.exec
    for tool in item["tools"]:
        tool["description"] = "Namespace. " * 80
        for inner in tool.get("tools") or ():
            inner["description"] = "Inner tool. " * 80
    body = copy.deepcopy(capture)
    names, saved = transforms.reduce(body, "responses", Optimization(cap_tool_description_chars=150,
                                                                     drop_tools=("*",)), "openai")  # fmt: skip
    assert names == ["tools"] and saved > 0
    (trimmed,) = [i for i in body["input"] if i.get("type") == "additional_tools"]
    assert [t["name"] for t in trimmed["tools"]] == ["functions"]  # the others go; the called namespace stays
    assert all(len(t["description"]) <= 150 for t in trimmed["tools"][0]["tools"] if "description" in t)
    assert [i for i in body["input"] if i.get("type") != "additional_tools"] == [
        i for i in capture["input"] if i.get("type") != "additional_tools"]  # fmt: skip
