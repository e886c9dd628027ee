"""A caller's OpenAI `messages` -> canonical messages (docs/translation.md §5.4).

Messages stay one-for-one and in place: system/developer messages keep their position (aider sends one last), and
`tool`/`function` messages become user messages holding one ToolResult each. Grouping runs into Anthropic turns
and hoisting system text is the Anthropic renderer's job, so a same-format OpenAI upstream sees the original shape.
"""

import orjson

from proxy.canonical import Document, Image, Message, Text, ToolResult, ToolUse
from proxy.errors import InvalidRequest
from proxy.ids import sanitize_tool_id

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")  # P-8
PDF_BASE64_MAGIC = "JVBER"  # "%PDF" in base64: lets a bare base64 file_data be recognised


def parse_messages(messages) -> list[Message]:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    parsed: list[Message] = []
    function_call_id = None  # the synthetic id of the latest legacy function_call, answered by role "function"
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest("Each message must be an object.", param=param)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            if texts := _text_parts(content, f"{param}.content"):
                parsed.append(Message(role="system", content=texts))
        elif role == "user":
            parsed.append(Message(role="user", content=_user_parts(content, f"{param}.content") or [Text("(empty)")]))
        elif role == "assistant":
            blocks, call_id = _assistant_blocks(message, param, i)
            function_call_id = call_id or function_call_id
            if blocks:
                parsed.append(Message(role="assistant", content=blocks))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidRequest("A tool message needs a tool_call_id.", param=f"{param}.tool_call_id")
            result = ToolResult(tool_use_id=sanitize_tool_id(call_id), content=_text_parts(content, f"{param}.content"))
            parsed.append(Message(role="user", content=[result]))
        elif role == "function":  # legacy
            result = ToolResult(
                tool_use_id=function_call_id or f"call_fn_{i}", content=_text_parts(content, f"{param}.content")
            )
            parsed.append(Message(role="user", content=[result]))
        else:
            raise InvalidRequest(
                f"Invalid value: {role!r}. Supported values are: 'system', 'developer', 'user', 'assistant', "
                "'tool' and 'function'.",
                param=f"{param}.role",
            )
    return parsed


def _cache_control(part: dict) -> dict | None:
    """Some clients put Anthropic-style cache_control on parts (LiteLLM convention, §5.9.1): keep it."""
    value = part.get("cache_control")
    return value if isinstance(value, dict) else None


def _text_parts(content, param: str) -> list[Text]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise InvalidRequest("Content must be a string or an array of text parts.", param=param)
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequest("Only text parts are allowed here.", param=f"{param}[{j}]")
        if part["text"]:
            texts.append(Text(part["text"], cache_control=_cache_control(part)))
    return texts


def _user_parts(content, param: str) -> list:
    if content is None or isinstance(content, str):
        return _text_parts(content, param)
    if not isinstance(content, list):
        raise InvalidRequest("Content must be a string or an array of parts.", param=param)
    blocks = []
    for j, part in enumerate(content):
        part_param = f"{param}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append(Text(part["text"], cache_control=_cache_control(part)))
        elif kind == "image_url":
            blocks.append(_image(part, f"{part_param}.image_url"))
        elif kind == "file":
            file = part.get("file")
            blocks.append(_document(file if isinstance(file, dict) else {}, f"{part_param}.file"))
        elif kind == "input_audio":
            raise InvalidRequest("Audio input is not supported by this gateway.", param=part_param)
        else:
            raise InvalidRequest(f"Unsupported content part type: {kind!r}.", param=f"{part_param}.type")
    return blocks


def _image(part: dict, param: str) -> Image:
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise InvalidRequest("image_url needs a url.", param=param)
    return image_from_url(url, param, _cache_control(part))


def image_from_url(url: str, param: str, cache_control: dict | None = None) -> Image:
    """An image given as a URL (Chat Completions' image_url.url, Responses' input_image.image_url): a base64 data
    URL of a type every upstream takes (P-8), or an http(s) URL."""
    if url.startswith("data:"):
        media_type, data = _data_url(url)
        media_type = "image/jpeg" if media_type == "image/jpg" else media_type
        if media_type not in IMAGE_MEDIA_TYPES or not data:
            raise InvalidRequest(
                "Images must be base64 data URLs of type image/jpeg, image/png, image/gif or image/webp.", param=param
            )
        return Image(media_type=media_type, data=data, cache_control=cache_control)
    if url.startswith(("https://", "http://")):
        return Image(url=url, cache_control=cache_control)
    raise InvalidRequest("image_url must be an http(s) URL or a base64 data URL.", param=param)


def _data_url(url: str) -> tuple[str, str]:
    """("image/png", "<base64>") for "data:image/png;base64,<base64>"; ("", "") when not base64."""
    header, _, data = url[len("data:") :].partition(",")
    if not header.endswith(";base64"):
        return "", ""
    return header.split(";", 1)[0].strip().lower(), data


def _document(file: dict, param: str) -> Document:
    if file.get("file_id"):
        raise InvalidRequest("file_id is not supported by this gateway; send the file as file_data.", param=param)
    return pdf_document(file.get("file_data"), param)


def pdf_document(data, param: str) -> Document:
    """A PDF sent as file_data (Chat Completions' file part, Responses' input_file): a base64 data URL, or bare
    base64 that starts like a PDF."""
    if isinstance(data, str) and data.startswith("data:"):
        media_type, data = _data_url(data)
    else:
        media_type = "application/pdf" if isinstance(data, str) and data.startswith(PDF_BASE64_MAGIC) else ""
    if media_type != "application/pdf" or not data:
        raise InvalidRequest("Only PDF files sent as base64 file_data are supported.", param=param)
    return Document(source={"type": "base64", "media_type": "application/pdf", "data": data})


def _assistant_blocks(message: dict, param: str, position: int) -> tuple[list, str | None]:
    """Text first, then tool calls. reasoning_content is dropped: it has no genuine signature (P-20)."""
    blocks: list = []
    content = message.get("content")
    if isinstance(content, str):
        texts = [content]
    elif isinstance(content, list):
        texts = [_assistant_part_text(part, f"{param}.content[{j}]") for j, part in enumerate(content)]
    elif content is None:
        texts = []
    else:
        raise InvalidRequest("Content must be a string, an array of parts or null.", param=f"{param}.content")
    if not any(text.strip() for text in texts) and isinstance(message.get("refusal"), str):
        texts = [message["refusal"]]
    blocks.extend(Text(text) for text in texts if text.strip())  # P-6

    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise InvalidRequest("tool_calls must be an array.", param=f"{param}.tool_calls")
    for k, call in enumerate(tool_calls):
        call_param = f"{param}.tool_calls[{k}]"
        function = call.get("function") if isinstance(call, dict) else None
        name, arguments = _function(function, f"{call_param}.function")
        blocks.append(ToolUse(id=sanitize_tool_id(call.get("id")), name=name, input=arguments))

    function_call_id = None
    if message.get("function_call") is not None:  # legacy: no id on the wire, so make a deterministic one
        name, arguments = _function(message["function_call"], f"{param}.function_call")
        function_call_id = f"call_fn_{position}"
        blocks.append(ToolUse(id=function_call_id, name=name, input=arguments))
    return blocks, function_call_id


def _assistant_part_text(part, param: str) -> str:
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return part["text"]
    if isinstance(part, dict) and part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
        return part["refusal"]
    raise InvalidRequest("Assistant content parts must be text or refusal parts.", param=param)


def _function(function, param: str) -> tuple[str, dict]:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise InvalidRequest("A tool call needs a function name.", param=f"{param}.name")
    return function["name"], _arguments(function.get("arguments"), f"{param}.arguments")


def _arguments(raw, param: str) -> dict:
    """A caller's own history: invalid JSON is the caller's bug, so say where it is (400) rather than guess."""
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise InvalidRequest("Tool-call arguments must be a JSON string.", param=param)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Tool-call arguments are not valid JSON: {exc}", param=param) from None
    return value if isinstance(value, dict) else {"value": value}
