"""formats.responses and `namespace` tools: the function and custom tools a namespace groups (Codex's "lite"
format puts every tool it has in namespaces, in an additional_tools input item) are offered to a translated
upstream one by one, and their calls go back named and namespaced as the caller defined them."""

import json

from proxy.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    ChatResponse,
    MessageDelta,
    MessageStart,
    MessageStop,
    Text,
    ToolUse,
    Usage,
)
from proxy.formats.responses import (
    StreamEncoder,
    dropped_tools,
    parse_request,
    render_response,
)
from proxy.formats.sse import SSEParser

LARK = "start: SOURCE\nSOURCE: /[\\s\\S]+/"
EXEC = {"type": "custom", "name": "exec", "description": "Run JavaScript", "format": {"type": "grammar",
        "syntax": "lark", "definition": LARK}}  # fmt: skip
WAIT = {"type": "function", "name": "wait", "description": "Wait", "strict": False,
        "parameters": {"type": "object", "properties": {"ms": {"type": "integer"}}}}  # fmt: skip
SPAWN = {"type": "function", "name": "spawn_agent", "parameters": {"type": "object", "properties": {}}}
FUNCTIONS = {"type": "namespace", "name": "functions", "description": "", "tools": [EXEC, WAIT]}
COLLABORATION = {"type": "namespace", "name": "collaboration", "description": "Sub-agents", "tools": [SPAWN]}


def lite_body(*history, tools=None) -> dict:
    return {
        "model": "gpt-6.2-sol",
        "input": [
            {"type": "additional_tools", "role": "developer", "tools": [FUNCTIONS, COLLABORATION]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
            *history,
        ],
        "tools": tools or [],
        "stream": True,
    }


def test_namespaced_tools_are_offered_one_by_one():
    req = parse_request(lite_body())
    assert [tool.name for tool in req.tools] == ["exec", "wait", "spawn_agent"]
    assert req.tools[0].input_schema["required"] == ["input"]
    assert LARK in req.tools[0].input_schema["properties"]["input"]["description"]
    assert req.tools[1].input_schema == WAIT["parameters"]
    assert req.custom_tools == frozenset({"exec"})
    assert req.namespaced == {
        "exec": ("functions", "exec"), "wait": ("functions", "wait"), "spawn_agent": ("collaboration", "spawn_agent")
    }  # fmt: skip
    assert req.echo["tools"] == [FUNCTIONS, COLLABORATION]  # as the caller defined them, each namespace once
    assert dropped_tools(lite_body()) == []  # a namespace is not a hosted tool


def test_a_clashing_name_is_qualified_by_its_namespace():
    top_level_wait = {**WAIT, "description": "another wait"}
    req = parse_request(lite_body(tools=[top_level_wait]))
    assert [tool.name for tool in req.tools] == ["wait", "exec", "functions__wait", "spawn_agent"]
    assert req.namespaced["functions__wait"] == ("functions", "wait") and "wait" not in req.namespaced


def test_replayed_calls_of_namespaced_tools_use_the_upstream_names():
    history = [
        {"type": "custom_tool_call", "call_id": "call_1", "name": "exec", "namespace": "functions", "input": "1+1"},
        {"type": "custom_tool_call_output", "call_id": "call_1", "output": "2"},
        {"type": "function_call", "call_id": "call_2", "name": "wait", "namespace": "functions", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_2", "output": "ok"},
    ]
    req = parse_request(lite_body(*history, tools=[{**WAIT, "description": "another wait"}]))
    calls = [block for message in req.messages for block in message.content if isinstance(block, ToolUse)]
    assert [(call.name, call.input) for call in calls] == [("exec", {"input": "1+1"}), ("functions__wait", {})]


def test_calls_go_back_named_and_namespaced():
    req = parse_request(lite_body())
    answer = ChatResponse(
        id="msg_1",
        model="up",
        content=[ToolUse("call_1", "exec", {"input": "text('hi')"}), ToolUse("call_2", "spawn_agent", {})],
        stop_reason="tool_use",
    )
    exec_call, spawn = render_response(answer, req)["output"]
    assert exec_call["type"] == "custom_tool_call" and exec_call["input"] == "text('hi')"
    assert (exec_call["name"], exec_call["namespace"]) == ("exec", "functions")
    assert spawn["type"] == "function_call" and (spawn["name"], spawn["namespace"]) == ("spawn_agent", "collaboration")


def test_a_stream_names_and_namespaces_the_calls_too():
    req = parse_request(lite_body())
    encoder = StreamEncoder(req)
    events = [
        MessageStart(id="msg_1", model="up", usage=Usage(input_tokens=5)),
        BlockStart(0, Text("")),
        BlockDelta(0, "text", "Running."),
        BlockStop(0),
        BlockStart(1, ToolUse("call_1", "exec", {})),
        BlockDelta(1, "input_json", '{"input": "text(1)"}'),
        BlockStop(1),
        MessageDelta(stop_reason="tool_use", stop_sequence=None, usage=Usage(input_tokens=5, output_tokens=7)),
        MessageStop(),
    ]
    raw = b"".join(encoder.encode(event) for event in events)
    sent = [json.loads(event.data) for event in SSEParser().feed(raw)]
    added = [e["item"] for e in sent if e["type"] == "response.output_item.added"]
    done = [e["item"] for e in sent if e["type"] == "response.output_item.done"]
    assert added[1]["namespace"] == "functions" and added[1]["name"] == "exec"
    assert done[1] == encoder.final_response["output"][1]
    assert (done[1]["type"], done[1]["input"], done[1]["namespace"]) == ("custom_tool_call", "text(1)", "functions")
