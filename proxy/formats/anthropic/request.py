"""Caller side: an Anthropic Messages (or count_tokens) body -> a validated ChatRequest.

The result is only used to translate to another provider (Anthropic -> Anthropic takes passthrough_request), so
whatever cannot cross is dropped here rather than rejected:
- the Claude Code billing block in `system` (P-24);
- Anthropic-defined tools with a dated `type` (web_search_20250305, bash_20250124, ...) (P-17);
- server-tool history blocks (server_tool_use, *_tool_result, ...) and `tool_reference` inside tool results; a
  message left with no blocks at all is dropped;
- Anthropic-only top-level fields (context_management, cache_control, service_tier, container, inference_geo,
  mcp_servers) and any field this parser does not know.
`output_config.effort` rides on ThinkingConfig.effort; with no `thinking` field it becomes
ThinkingConfig("adaptive", effort=...), because the effort is the only reasoning signal such a request carries and
§5.1 maps it to `reasoning_effort` whatever `thinking` says.
Errors name the field the way Anthropic does: InvalidRequest("max_tokens: Field required", param="max_tokens").
"""

from ...canonical import (
    ChatRequest,
    Document,
    Image,
    Message,
    RedactedThinking,
    ResponseFormat,
    Text,
    Thinking,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResult,
    ToolUse,
)
from ...errors import InvalidRequest

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
SERVER_TOOL_BLOCKS = frozenset({"server_tool_use", "mcp_tool_use", "container_upload"})

_TYPE_NAMES = {
    str: "a valid string",
    int: "a valid integer",
    float: "a valid number",
    bool: "a valid boolean",
    list: "a valid list",
    dict: "a valid dictionary",
}


def parse_request(body: dict) -> ChatRequest:
    return _parse(body, max_tokens_required=True)


def parse_count_tokens_request(body: dict) -> ChatRequest:
    return _parse(body, max_tokens_required=False)


def _parse(body, *, max_tokens_required: bool) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = _field(body, "model", str, "model", required=True)
    if not model:
        raise _invalid("model", "String should have at least 1 character")
    max_tokens = _field(body, "max_tokens", int, "max_tokens", required=max_tokens_required)
    if max_tokens is not None and max_tokens < 0:
        raise _invalid("max_tokens", "Input should be greater than or equal to 0")
    output_config = _field(body, "output_config", dict, "output_config") or {}
    effort = _field(output_config, "effort", str, "output_config.effort")
    metadata = _field(body, "metadata", dict, "metadata") or {}
    return ChatRequest(
        model=model,
        messages=_messages(body.get("messages")),
        system=_system(body.get("system")),
        max_tokens=max_tokens,
        stream=bool(_field(body, "stream", bool, "stream")),
        temperature=_field(body, "temperature", float, "temperature"),
        top_p=_field(body, "top_p", float, "top_p"),
        top_k=_field(body, "top_k", int, "top_k"),
        stop=_stop_sequences(body.get("stop_sequences")),
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(body.get("tool_choice")),
        thinking=_thinking(body.get("thinking"), effort),
        response_format=_response_format(output_config, body.get("output_format")),
        user=_field(metadata, "user_id", str, "metadata.user_id"),
    )


# --- validation helpers -------------------------------------------------------------------------------------


def _invalid(param: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {problem}", param=param)


def _field(obj: dict, key: str, kind: type, param: str, *, required: bool = False):
    """obj[key] checked against `kind`; None when absent (or null) and not required."""
    value = obj.get(key)
    if value is None:
        if required:
            raise _invalid(param, "Field required")
        return None
    if not _is(value, kind):
        raise _invalid(param, f"Input should be {_TYPE_NAMES[kind]}")
    return value


def _is(value, kind: type) -> bool:
    if isinstance(value, bool):  # bool is an int subclass: JSON true is not a number
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _list(value, param: str) -> list:
    if not isinstance(value, list):
        raise _invalid(param, f"Input should be {_TYPE_NAMES[list]}")
    return value


def _object(value, param: str) -> dict:
    if not isinstance(value, dict):
        raise _invalid(param, f"Input should be {_TYPE_NAMES[dict]}")
    return value


# --- system and messages ------------------------------------------------------------------------------------


def _system(raw) -> list[Text]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Text(raw)] if raw else []
    texts = [_text_only(item, f"system.{i}") for i, item in enumerate(_list(raw, "system"))]
    # P-24: the billing block changes on every request and would defeat prefix caching at other providers
    return [t for t in texts if not t.text.startswith(BILLING_HEADER_PREFIX)]


def _text_only(raw, param: str) -> Text:
    block = _object(raw, param)
    if block.get("type") != "text":
        raise _invalid(f"{param}.type", "Input should be 'text'")
    return _text(block, param)


def _messages(raw) -> list[Message]:
    if raw is None:
        raise _invalid("messages", "Field required")
    if not _list(raw, "messages"):
        raise _invalid("messages", "at least one message is required")
    messages: list[Message] = []
    for i, item in enumerate(raw):
        param = f"messages.{i}"
        item = _object(item, param)
        role = item.get("role")
        if role not in ("user", "assistant", "system"):
            raise _invalid(f"{param}.role", "Input should be 'user', 'assistant' or 'system'")
        messages.extend(_message(role, item.get("content"), f"{param}.content"))
    return messages


def _message(role: str, content, param: str) -> list[Message]:
    """One wire message -> canonical messages: usually one, none when every block was dropped, several when a
    beta `mid_conv_system` block sits inside (it becomes a system message at that position)."""
    if content is None:
        raise _invalid(param, "Field required")
    if isinstance(content, str):
        return [Message(role, [Text(content)])]
    messages: list[Message] = []
    blocks: list = []
    for j, raw in enumerate(_list(content, param)):
        block_param = f"{param}.{j}"
        if role == "system":
            blocks.append(_text_only(raw, block_param))
        elif _object(raw, block_param).get("type") == "mid_conv_system":
            if blocks:
                messages.append(Message(role, blocks))
                blocks = []
            texts = _list(raw.get("content"), f"{block_param}.content")
            texts = [_text_only(t, f"{block_param}.content.{k}") for k, t in enumerate(texts)]
            messages.append(Message("system", texts))
        elif (block := _block(raw, block_param)) is not None:
            blocks.append(block)
    if blocks or not content:
        messages.append(Message(role, blocks))
    return messages


# --- content blocks -----------------------------------------------------------------------------------------


def _block(raw: dict, param: str):
    kind = raw.get("type")
    if not isinstance(kind, str):  # a list or object would not even hash for the lookup below
        raise _invalid(f"{param}.type", "Input should be a valid string")
    parse = _BLOCK_PARSERS.get(kind)
    if parse is not None:
        return parse(raw, param)
    if kind in SERVER_TOOL_BLOCKS or (isinstance(kind, str) and kind.endswith("_tool_result")):
        return None  # server-tool history: only Anthropic can run or read it
    raise _invalid(f"{param}.type", f"unsupported content block type {kind!r}")


def _text(raw: dict, param: str) -> Text:
    text = _field(raw, "text", str, f"{param}.text", required=True)
    return Text(text, cache_control=_field(raw, "cache_control", dict, f"{param}.cache_control"))


def _image(raw: dict, param: str) -> Image:
    source = _object(raw.get("source"), f"{param}.source")
    cache_control = _field(raw, "cache_control", dict, f"{param}.cache_control")
    kind = source.get("type")
    if kind == "base64":
        media_type = source.get("media_type")
        if media_type not in IMAGE_MEDIA_TYPES:  # P-8
            raise _invalid(f"{param}.source.media_type", "Input should be one of " + ", ".join(IMAGE_MEDIA_TYPES))
        data = _field(source, "data", str, f"{param}.source.data", required=True)
        return Image(media_type=media_type, data=data, cache_control=cache_control)
    if kind == "url":
        url = _field(source, "url", str, f"{param}.source.url", required=True)
        return Image(url=url, cache_control=cache_control)
    raise _invalid(f"{param}.source.type", "Input should be 'base64' or 'url'")


def _document(raw: dict, param: str) -> Document:
    return Document(
        source=_object(raw.get("source"), f"{param}.source"),
        title=_field(raw, "title", str, f"{param}.title"),
        context=_field(raw, "context", str, f"{param}.context"),
        cache_control=_field(raw, "cache_control", dict, f"{param}.cache_control"),
    )


def _search_result(raw: dict, param: str) -> Text:
    """Flattened to text: other providers have no citable search-result block."""
    content = _list(raw.get("content"), f"{param}.content")
    texts = [_text_only(t, f"{param}.content.{k}").text for k, t in enumerate(content)]
    heading = " ".join(p for p in (raw.get("title"), raw.get("source")) if isinstance(p, str))
    return Text("\n\n".join(([heading] if heading else []) + texts))


def _tool_use(raw: dict, param: str) -> ToolUse:
    return ToolUse(
        id=_field(raw, "id", str, f"{param}.id", required=True),
        name=_field(raw, "name", str, f"{param}.name", required=True),
        input=_field(raw, "input", dict, f"{param}.input", required=True),
        cache_control=_field(raw, "cache_control", dict, f"{param}.cache_control"),
    )


def _tool_result(raw: dict, param: str) -> ToolResult:
    content = raw.get("content")
    if content is None or content == "":
        blocks = []
    elif isinstance(content, str):
        blocks = [Text(content)]
    else:
        blocks = []
        for k, item in enumerate(_list(content, f"{param}.content")):
            item_param = f"{param}.content.{k}"
            kind = _object(item, item_param).get("type")
            if kind == "tool_reference":
                continue  # a pointer into Anthropic's tool search; nothing to show another provider
            if not isinstance(kind, str) or kind not in _TOOL_RESULT_PARSERS:
                raise _invalid(f"{item_param}.type", f"unsupported tool_result content type {kind!r}")
            blocks.append(_TOOL_RESULT_PARSERS[kind](item, item_param))
    return ToolResult(
        tool_use_id=_field(raw, "tool_use_id", str, f"{param}.tool_use_id", required=True),
        content=blocks,
        is_error=bool(_field(raw, "is_error", bool, f"{param}.is_error")),
        cache_control=_field(raw, "cache_control", dict, f"{param}.cache_control"),
    )


def _thinking_block(raw: dict, param: str) -> Thinking:
    return Thinking(
        thinking=_field(raw, "thinking", str, f"{param}.thinking", required=True),
        signature=_field(raw, "signature", str, f"{param}.signature") or "",
    )


def _redacted_thinking(raw: dict, param: str) -> RedactedThinking:
    return RedactedThinking(data=_field(raw, "data", str, f"{param}.data", required=True))


_TOOL_RESULT_PARSERS = {"text": _text, "image": _image, "document": _document, "search_result": _search_result}
_BLOCK_PARSERS = {
    **_TOOL_RESULT_PARSERS,
    "tool_use": _tool_use,
    "tool_result": _tool_result,
    "thinking": _thinking_block,
    "redacted_thinking": _redacted_thinking,
}


# --- generation controls ------------------------------------------------------------------------------------


def _stop_sequences(raw) -> list[str]:
    if raw is None:
        return []
    sequences = _list(raw, "stop_sequences")
    for i, sequence in enumerate(sequences):
        if not isinstance(sequence, str):
            raise _invalid(f"stop_sequences.{i}", f"Input should be {_TYPE_NAMES[str]}")
    return sequences


def _tools(raw) -> list[Tool]:
    if raw is None:
        return []
    tools = []
    for i, item in enumerate(_list(raw, "tools")):
        param = f"tools.{i}"
        item = _object(item, param)
        if item.get("type") not in (None, "custom"):
            continue  # P-17: Anthropic-defined and server tools run only at Anthropic
        tools.append(
            Tool(
                name=_field(item, "name", str, f"{param}.name", required=True),
                input_schema=_field(item, "input_schema", dict, f"{param}.input_schema", required=True),
                description=_field(item, "description", str, f"{param}.description"),
                strict=_field(item, "strict", bool, f"{param}.strict"),
                cache_control=_field(item, "cache_control", dict, f"{param}.cache_control"),
            )
        )
    return tools


def _tool_choice(raw) -> ToolChoice | None:
    if raw is None:
        return None
    raw = _object(raw, "tool_choice")
    kind = raw.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        raise _invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    name = _field(raw, "name", str, "tool_choice.name", required=True) if kind == "tool" else None
    disable_parallel = _field(raw, "disable_parallel_tool_use", bool, "tool_choice.disable_parallel_tool_use")
    return ToolChoice(kind, name=name, disable_parallel=bool(disable_parallel))


def _thinking(raw, effort: str | None) -> ThinkingConfig | None:
    if raw is None:
        return ThinkingConfig("adaptive", effort=effort) if effort else None
    raw = _object(raw, "thinking")
    kind = raw.get("type")
    if kind == "enabled":
        budget = _field(raw, "budget_tokens", int, "thinking.budget_tokens", required=True)
        return ThinkingConfig("enabled", budget_tokens=budget, effort=effort)
    if kind in ("adaptive", "disabled"):
        return ThinkingConfig(kind, effort=effort)
    raise _invalid("thinking.type", "Input should be 'enabled', 'adaptive' or 'disabled'")


def _response_format(output_config: dict, legacy_output_format) -> ResponseFormat | None:
    """output_config.format, or the older beta top-level `output_format` of the same shape."""
    if "format" in output_config:
        raw, param = output_config["format"], "output_config.format"
    else:
        raw, param = legacy_output_format, "output_format"
    if raw is None:
        return None
    raw = _object(raw, param)
    if raw.get("type") != "json_schema":
        raise _invalid(f"{param}.type", "Input should be 'json_schema'")
    return ResponseFormat("json_schema", schema=_field(raw, "schema", dict, f"{param}.schema", required=True))
