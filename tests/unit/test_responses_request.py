"""formats.responses.parse_request: a Responses caller's body -> canonical request (docs/responses.md R-3..R-8,
docs/translation.md §5.3), with the Codex CLI's request shape (tests/fixtures/codex/README.md) as the main customer."""

import copy

import pytest

from proxy.canonical import (
    Document,
    Image,
    Message,
    RedactedThinking,
    ResponseFormat,
    Text,
    Thinking,
    ThinkingConfig,
    ToolChoice,
    ToolResult,
    ToolUse,
)
from proxy.errors import InvalidRequest
from proxy.formats import get
from proxy.formats.responses import (
    dropped_tools,
    expand_previous,
    input_items,
    parse_request,
    reasoning,
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago="
LARK = 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF'


@pytest.fixture
def sealing():
    reasoning.configure(b"test gateway secret")
    yield
    reasoning.configure(None)


def body(input_=None, **fields) -> dict:
    return {"model": "gpt-5-codex", "input": "hi" if input_ is None else input_, **fields}


def user(*parts) -> dict:
    return {"type": "message", "role": "user", "content": list(parts)}


def text(value: str) -> dict:
    return {"type": "input_text", "text": value}


def rejected_param(request_body: dict) -> str:
    with pytest.raises(InvalidRequest) as raised:
        parse_request(request_body)
    assert raised.value.status == 400
    return raised.value.param


# What Codex 0.171 sends (tests/fixtures/codex/README.md): no instructions, a developer message, the environment
# context, the prompt; function tools, apply_patch as a custom tool with a Lark grammar, and hosted tools.
CODEX_TOOLS = [
    {
        "type": "function",
        "name": "exec_command",
        "description": "Runs a command in a PTY, returning output or a session ID for ongoing interaction.",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {
                "cmd": {"type": "string", "description": "Shell command to execute."},
                "workdir": {"type": "string"},
                "tty": {"type": "boolean"},
                "yield_time_ms": {"type": "number"},
            },
            "required": ["cmd"],
            "additionalProperties": False,
        },
    },
    {
        "type": "function",
        "name": "write_stdin",
        "description": "Writes characters to an existing unified exec session.",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {"session_id": {"type": "number"}, "chars": {"type": "string"}},
            "required": ["session_id"],
            "additionalProperties": False,
        },
    },
    {
        "type": "custom",
        "name": "apply_patch",
        "description": "Use the `apply_patch` tool to edit files. This is a FREEFORM tool.",
        "format": {"type": "grammar", "syntax": "lark", "definition": LARK},
    },
    {"type": "web_search", "external_web_access": False},
    {"type": "tool_search", "execution": "client"},
]
CODEX_FIRST_TURN = {
    "model": "gpt-5-codex",
    "instructions": None,
    "input": [
        {"type": "message", "role": "developer", "content": [text("You are Codex, a coding agent.")]},
        user(text("<environment_context>\n  <cwd>/tmp/work</cwd>\n</environment_context>")),
        user(text("list the files here")),
    ],
    "tools": CODEX_TOOLS,
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "019a5c1e-7a0b-7cc3-9c8e-0d1f5b1c2a3b",
    "text": {"verbosity": "low"},
    "client_metadata": {"originator": "codex_exec"},
}
OPENAI_SEALED = "gAAAAABo8x1Yfoo-encrypted-by-openai=="


def codex_second_turn() -> dict:
    """The first turn replayed with the model's reasoning, tool calls and their outputs (store: false)."""
    turn = copy.deepcopy(CODEX_FIRST_TURN)
    turn["input"] += [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "**Listing**"}],
         "content": None, "encrypted_content": OPENAI_SEALED},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed", "phase": "commentary",
         "content": [{"type": "output_text", "text": "Listing files.", "annotations": [], "logprobs": []}]},
        {"type": "function_call", "id": "fc_1", "status": "completed", "name": "exec_command",
         "arguments": '{"cmd":"ls","workdir":"/tmp/work"}', "call_id": "call_ls"},
        {"type": "function_call_output", "call_id": "call_ls", "output": "a.txt\nb.txt\n"},
        {"type": "custom_tool_call", "id": "ctc_1", "status": "completed", "call_id": "call_patch",
         "name": "apply_patch", "input": "*** Begin Patch\n*** Add File: c.txt\n+hi\n*** End Patch\n"},
        {"type": "custom_tool_call_output", "call_id": "call_patch", "output": "Success."},
        user(text("thanks")),
    ]  # fmt: skip
    return turn


# --- Codex ---------------------------------------------------------------------------------------------------


def test_codex_first_turn_developer_message_is_the_system_prompt_R7():
    req = parse_request(CODEX_FIRST_TURN)
    assert req.model == "gpt-5-codex" and req.stream
    assert req.system == []  # Codex sends no instructions
    assert req.messages == [
        Message("system", [Text("You are Codex, a coding agent.")]),
        Message("user", [Text("<environment_context>\n  <cwd>/tmp/work</cwd>\n</environment_context>"),
                         Text("list the files here")]),
    ]  # fmt: skip
    assert req.thinking == ThinkingConfig(type="enabled", budget_tokens=2048, effort="medium")
    assert req.tool_choice == ToolChoice(type="auto", disable_parallel=True)
    assert req.response_format is None


def test_codex_tools_function_custom_kept_hosted_dropped_R3_R4():
    req = parse_request(CODEX_FIRST_TURN)
    assert [tool.name for tool in req.tools] == ["exec_command", "write_stdin", "apply_patch"]
    exec_command = req.tools[0]
    assert exec_command.input_schema == CODEX_TOOLS[0]["parameters"] and exec_command.strict is False
    assert exec_command.description.startswith("Runs a command")
    patch = req.tools[2]
    assert patch.input_schema["required"] == ["input"]
    assert patch.input_schema["properties"]["input"]["type"] == "string"
    assert LARK in patch.input_schema["properties"]["input"]["description"]  # the model can follow the grammar
    assert patch.description == CODEX_TOOLS[2]["description"]
    assert req.custom_tools == frozenset({"apply_patch"})
    assert dropped_tools(CODEX_FIRST_TURN) == ["web_search", "tool_search"]
    assert [tool["name"] for tool in req.echo["tools"]] == ["exec_command", "write_stdin", "apply_patch"]


def test_codex_replayed_turns_alternate_calls_and_results():
    req = parse_request(codex_second_turn())
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    # OpenAI's own encrypted reasoning cannot go to another upstream: dropped (R-5)
    assert req.messages[2:] == [
        Message("assistant", [Text("Listing files."),
                              ToolUse("call_ls", "exec_command", {"cmd": "ls", "workdir": "/tmp/work"})]),
        Message("user", [ToolResult("call_ls", [Text("a.txt\nb.txt\n")])]),
        Message("assistant", [ToolUse("call_patch", "apply_patch",
                                      {"input": "*** Begin Patch\n*** Add File: c.txt\n+hi\n*** End Patch\n"})]),
        Message("user", [ToolResult("call_patch", [Text("Success.")]), Text("thanks")]),
    ]  # fmt: skip


def test_codex_lite_format_tools_in_an_additional_tools_item_are_read():
    lite = copy.deepcopy(CODEX_FIRST_TURN)
    lite["tools"] = []
    lite["input"].insert(0, {"type": "additional_tools", "role": "developer", "tools": CODEX_TOOLS[:1]})
    req = parse_request(lite)
    assert [tool.name for tool in req.tools] == ["exec_command"]
    assert [m.role for m in req.messages] == ["system", "user"]  # the item itself is not history


def test_the_registry_knows_the_format():
    module = get("responses")
    assert module.NAME == "responses" and module.parse_request is parse_request


# --- input shapes --------------------------------------------------------------------------------------------


def test_string_input_is_one_user_message():
    assert parse_request(body("hello")).messages == [Message("user", [Text("hello")])]


def test_easy_messages_without_type_and_with_string_content():
    req = parse_request(body([
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "developer", "content": [text("dev")]},
        {"role": "user", "content": "q2"},
    ]))  # fmt: skip
    assert req.messages == [
        Message("system", [Text("sys")]),
        Message("user", [Text("q1")]),
        Message("assistant", [Text("a1")]),
        Message("system", [Text("dev")]),
        Message("user", [Text("q2")]),
    ]


def test_instructions_become_the_system_prompt_R7():
    req = parse_request(body("hi", instructions="Answer in French."))
    assert req.system == [Text("Answer in French.")]
    assert req.echo["instructions"] == "Answer in French."


def test_user_images_by_data_url_and_https_and_a_pdf():
    req = parse_request(body([user(
        text("what is this?"),
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
        {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
        {"type": "input_file", "filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
    )]))  # fmt: skip
    assert req.messages[0].content == [
        Text("what is this?"),
        Image(media_type="image/png", data=PNG),
        Image(url="https://example.com/cat.jpg"),
        Document(source={"type": "base64", "media_type": "application/pdf", "data": PDF}),
    ]


def test_assistant_output_items_as_the_api_returned_them_are_accepted():
    """A stored or replayed output message: id, status, annotations, logprobs, a refusal part."""
    item = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant", "content": [
        {"type": "output_text", "text": "part one ", "annotations": [], "logprobs": []},
        {"type": "refusal", "refusal": "I can't do that."},
        {"type": "output_text", "text": "  ", "annotations": []},
    ]}  # fmt: skip
    req = parse_request(body([user(text("q")), item, user(text("why?"))]))
    assert req.messages[1] == Message("assistant", [Text("part one "), Text("I can't do that.")])  # P-6


def test_function_call_output_with_parts_and_empty_output():
    req = parse_request(body([
        user(text("look")),
        {"type": "function_call", "call_id": "call_1", "name": "shot", "arguments": ""},
        {"type": "function_call", "call_id": "call_2", "name": "noop", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": [
            text("screenshot:"), {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]},
        {"type": "function_call_output", "call_id": "call_2", "output": ""},
    ]))  # fmt: skip
    assistant, results = req.messages[1:]
    assert assistant.content == [ToolUse("call_1", "shot", {}), ToolUse("call_2", "noop", {})]
    assert results.content == [
        ToolResult("call_1", [Text("screenshot:"), Image(media_type="image/png", data=PNG)]),
        ToolResult("call_2", []),
    ]


def test_call_ids_are_repaired_the_same_way_on_call_and_output_P16():
    req = parse_request(body([
        user(text("q")),
        {"type": "function_call", "call_id": "functions.read:0", "name": "read", "arguments": '{"p": 1}'},
        {"type": "function_call_output", "call_id": "functions.read:0", "output": "x"},
    ]))  # fmt: skip
    call_id = req.messages[1].content[0].id
    assert call_id.startswith("functions_read_0_") and req.messages[2].content[0].tool_use_id == call_id


def test_non_object_arguments_are_wrapped():
    req = parse_request(body([user(text("q")), {"type": "function_call", "call_id": "c", "name": "f",
                                                 "arguments": "[1, 2]"}, user(text("ok"))]))  # fmt: skip
    assert req.messages[1].content == [ToolUse("c", "f", {"value": [1, 2]})]


def test_hosted_tool_call_items_are_dropped_R4():
    req = parse_request(body([
        user(text("search")),
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "x"}},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "found"}]},
        user(text("more")),
    ]))  # fmt: skip
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    assert req.messages[1].content == [Text("found")]


def test_empty_user_content_gets_a_placeholder_P6():
    assert parse_request(body([user()])).messages == [Message("user", [Text("(empty)")])]


# --- reasoning items (R-5) -----------------------------------------------------------------------------------


def test_our_sealed_reasoning_comes_back_byte_exact_and_first_in_the_turn(sealing):
    thinking = Thinking("Let me think about ü and \"quotes\".", signature="EqQBCkYIBxgCKkD+sig==")
    redacted = RedactedThinking("EmwKAhgBEgy3redacted")
    req = parse_request(body([
        user(text("q")),
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": thinking.thinking}],
         "encrypted_content": reasoning.seal([thinking])},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": reasoning.seal([redacted])},
        {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "ok"},
    ]))  # fmt: skip
    assert req.messages[1] == Message("assistant", [thinking, redacted, ToolUse("toolu_1", "f", {})])


@pytest.mark.parametrize(
    "encrypted_content",
    [OPENAI_SEALED, None, "gh1.not-base64!", "gh1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    ids=["openai", "absent", "garbage", "forged"],
)
def test_reasoning_we_did_not_seal_is_dropped_R5(sealing, encrypted_content):
    item = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}]}
    if encrypted_content is not None:
        item["encrypted_content"] = encrypted_content
    req = parse_request(body([user(text("q")), item, {"role": "assistant", "content": "a"}, user(text("r"))]))
    assert req.messages[1] == Message("assistant", [Text("a")])


def test_a_token_sealed_under_another_secret_does_not_open():
    reasoning.configure(b"old secret")
    token = reasoning.seal([Thinking("t", "sig")])
    reasoning.configure(b"new secret")
    try:
        assert token.startswith("gh1.") and reasoning.open_sealed(token) is None
    finally:
        reasoning.configure(None)


def test_without_a_key_nothing_is_sealed_or_opened():
    assert reasoning.seal([Thinking("t", "sig")]) is None
    assert reasoning.open_sealed("gh1.whatever") is None


def test_a_tampered_token_does_not_open(sealing):
    token = reasoning.seal([Thinking("t", "sig")])
    body_part = token[len("gh1."):]
    flipped = body_part[:20] + ("A" if body_part[20] != "A" else "B") + body_part[21:]
    assert reasoning.open_sealed(token) == [Thinking("t", "sig")]
    assert reasoning.open_sealed("gh1." + flipped) is None


# --- parameters ----------------------------------------------------------------------------------------------


def test_parameters_map_onto_the_canonical_request():
    req = parse_request(body(
        "hi", max_output_tokens=300, temperature=0.2, top_p=0.9, user="u-1", stream=True, store=False,
        metadata={"k": "v"}, previous_response_id="resp_prev", truncation="auto",
    ))  # fmt: skip
    assert (req.max_tokens, req.temperature, req.top_p, req.user, req.stream) == (300, 0.2, 0.9, "u-1", True)
    assert req.echo["store"] is False and req.echo["metadata"] == {"k": "v"}
    assert req.echo["previous_response_id"] == "resp_prev" and req.echo["truncation"] == "auto"


def test_echo_defaults_are_openais():
    echo = parse_request(body("hi")).echo
    assert echo == {
        "instructions": None,
        "max_output_tokens": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "user": None,
    }


def test_safety_identifier_stands_in_for_user():
    assert parse_request(body("hi", safety_identifier="s-1")).user == "s-1"


@pytest.mark.parametrize(
    "fmt, expected",
    [
        ({"type": "text"}, None),
        ({"type": "json_object"}, ResponseFormat(type="json_object")),
        (
            {"type": "json_schema", "name": "person", "strict": True, "schema": {"type": "object"}},
            ResponseFormat(type="json_schema", schema={"type": "object"}, name="person", strict=True),
        ),
    ],
)
def test_text_format(fmt, expected):
    req = parse_request(body("hi", text={"format": fmt}))
    assert req.response_format == expected
    assert req.echo["text"] == {"format": fmt, "verbosity": "medium"}


@pytest.mark.parametrize(
    "effort, thinking",
    [
        ("minimal", None),
        ("none", None),
        ("low", ThinkingConfig(type="enabled", budget_tokens=1024, effort="low")),
        ("high", ThinkingConfig(type="enabled", budget_tokens=4096, effort="high")),
        ("xhigh", ThinkingConfig(type="enabled", budget_tokens=8192, effort="xhigh")),
    ],
)
def test_reasoning_effort_uses_the_chat_budget_table_R6(effort, thinking):
    assert parse_request(body("hi", reasoning={"effort": effort})).thinking == thinking


FUNCTION = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
CUSTOM = {"type": "custom", "name": "patch"}


@pytest.mark.parametrize(
    "choice, expected",
    [
        ("auto", ToolChoice(type="auto")),
        ("none", ToolChoice(type="none")),
        ("required", ToolChoice(type="any")),
        ({"type": "function", "name": "get_weather"}, ToolChoice(type="tool", name="get_weather")),
        ({"type": "custom", "name": "patch"}, ToolChoice(type="tool", name="patch")),
        ({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]},
         ToolChoice(type="any")),
    ],
)  # fmt: skip
def test_tool_choice(choice, expected):
    req = parse_request(body("hi", tools=[FUNCTION, CUSTOM], tool_choice=choice))
    assert req.tool_choice == expected
    assert req.echo["tool_choice"] == choice


def test_allowed_tools_filters_the_tool_list():
    choice = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "custom", "name": "patch"}]}
    assert [t.name for t in parse_request(body("hi", tools=[FUNCTION, CUSTOM], tool_choice=choice)).tools] == ["patch"]


def test_function_without_parameters_gets_an_empty_object_schema():
    tool = parse_request(body("hi", tools=[{"type": "function", "name": "now"}])).tools[0]
    assert tool.input_schema == {"type": "object", "properties": {}}


def test_a_tool_choice_without_tools_means_nothing():
    assert parse_request(body("hi", tool_choice="required")).tool_choice is None


# --- previous_response_id (R-8: resolved by the core, before parsing) ----------------------------------------

STORED = [
    {"type": "message", "role": "user", "content": "What is 2+2?"},
    {"type": "message", "id": "msg_a", "status": "completed", "role": "assistant",
     "content": [{"type": "output_text", "text": "4", "annotations": []}]},
]  # fmt: skip


def test_expand_previous_prepends_the_stored_items_to_a_string_input():
    original = body("And times 3?", previous_response_id="resp_prev")
    kept = copy.deepcopy(original)
    expanded = expand_previous(original, STORED)
    assert original == kept  # pure
    assert expanded["input"] == [*STORED, {"type": "message", "role": "user", "content": "And times 3?"}]
    req = parse_request(expanded)
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    assert req.echo["previous_response_id"] == "resp_prev"


def test_expand_previous_with_list_input():
    expanded = expand_previous(body([user(text("next"))]), STORED)
    assert expanded["input"] == [*STORED, user(text("next"))]


def test_input_items():
    assert input_items(body("hi")) == [{"type": "message", "role": "user", "content": "hi"}]
    assert input_items(body([user(text("x"))])) == [user(text("x"))]
    assert input_items({"model": "m"}) == []


# --- errors name the parameter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_body, param",
    [
        ({"input": "hi"}, "model"),
        ({"model": "m"}, "input"),
        (body(""), "input"),
        (body([]), "input"),
        (body([{"role": "assistant", "content": "only me"}]), "input"),
        (body(["not an object"]), "input[0]"),
        (body([{"role": "tool", "content": "x"}]), "input[0].role"),
        (body([user({"type": "input_image", "file_id": "file-1"})]), "input[0].content[0].file_id"),
        (body([user({"type": "input_image", "image_url": "data:image/bmp;base64,Qk0="})]),
         "input[0].content[0].image_url"),
        (body([user({"type": "input_text"})]), "input[0].content[0].text"),
        (body([user({"type": "input_image", "image_url": "ftp://x"})]), "input[0].content[0].image_url"),
        (body([user({"type": "input_file", "file_id": "file-1"})]), "input[0].content[0].file_id"),
        (body([user({"type": "input_file", "file_url": "https://x/a.pdf"})]), "input[0].content[0].file_url"),
        (body([user({"type": "input_audio", "input_audio": {}})]), "input[0].content[0]"),
        (body([user({"type": "video"})]), "input[0].content[0].type"),
        (body([{"type": "function_call", "name": "f", "arguments": "{}"}]), "input[0].call_id"),
        (body([user(text("q")), {"type": "function_call", "call_id": "c", "arguments": "{}"}]), "input[1].name"),
        (body([user(text("q")), {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{bad"}]),
         "input[1].arguments"),
        (body([user(text("q")), {"type": "custom_tool_call", "call_id": "c", "name": "f"}]), "input[1].input"),
        (body([{"type": "function_call_output", "call_id": "c", "output": 7}]), "input[0].output"),
        (body([{"type": "item_reference", "id": "msg_1"}]), "input[0].type"),
        (body([{"type": "compaction", "encrypted_content": "x"}]), "input[0].type"),
        (body("hi", tools=[{"type": "quantum_search"}]), "tools[0].type"),
        (body("hi", tools=[FUNCTION, {"name": "untyped"}]), "tools[1].type"),
        (body("hi", tools=[{"type": "function"}]), "tools[0].name"),
        (body("hi", tools=[{"type": "function", "name": "f", "parameters": "x"}]), "tools[0].parameters"),
        (body("hi", tools="all"), "tools"),
        (body("hi", tools=[FUNCTION], tool_choice={"type": "function", "name": "other"}), "tool_choice"),
        (body("hi", tools=[FUNCTION], tool_choice={"type": "web_search_preview"}), "tool_choice"),
        (body("hi", tools=[FUNCTION], tool_choice="sometimes"), "tool_choice"),
        (body("hi", tools=[FUNCTION], parallel_tool_calls="no"), "parallel_tool_calls"),
        (body("hi", text={"format": {"type": "xml"}}), "text.format"),
        (body("hi", text={"format": {"type": "json_schema", "name": "x"}}), "text.format.schema"),
        (body("hi", text="json"), "text"),
        (body("hi", reasoning={"effort": "extreme"}), "reasoning.effort"),
        (body("hi", max_output_tokens=0), "max_output_tokens"),
        (body("hi", max_output_tokens="10"), "max_output_tokens"),
        (body("hi", temperature="hot"), "temperature"),
        (body("hi", top_p=True), "top_p"),
        (body("hi", instructions=["a"]), "instructions"),
        (body("hi", metadata=["a"]), "metadata"),
        (body("hi", stream="yes"), "stream"),
        (body("hi", store="no"), "store"),
        (body("hi", user=5), "user"),
        (body("hi", background=True), "background"),
        (body("hi", conversation="conv_1"), "conversation"),
        (body("hi", prompt={"id": "pmpt_1"}), "prompt"),
        (body("hi", top_logprobs=3), "top_logprobs"),  # P-13
        (body("hi", include=["message.output_text.logprobs"]), "include"),
    ],
)  # fmt: skip
def test_invalid_requests_name_the_parameter(request_body, param):
    assert rejected_param(request_body) == param


def test_error_for_an_unknown_tool_type_names_it():
    with pytest.raises(InvalidRequest, match="'quantum_search'"):
        parse_request(body("hi", tools=[{"type": "quantum_search"}]))
