"""A caller's Responses `input` -> canonical messages (R-3, R-5, R-7).

Where Chat has messages, Responses has a flat list of items: an assistant turn is a run of assistant `message`,
`reasoning`, `function_call` and `custom_tool_call` items, and tool results are `function_call_output` /
`custom_tool_call_output` items. Runs of items with the same canonical role merge into one canonical message
(what Anthropic needs: one assistant turn, then one user turn holding the results). System and developer
messages stay separate and in place; the upstream renderer hoists them into its system prompt (R-7).

Dropped on purpose: reasoning items we did not seal (R-5), and the call items of hosted tools, which only a
native Responses upstream can run (R-4). Everything else unknown is a 400 naming the item.
"""

import orjson

from proxy.canonical import Document, Image, Message, Text, ToolResult, ToolUse
from proxy.errors import InvalidRequest
from proxy.ids import sanitize_tool_id

from ..openai.messages_in import image_from_url, pdf_document
from . import reasoning

CUSTOM_INPUT = "input"  # the one string parameter a custom (freeform) tool becomes upstream
HOSTED_CALL_ITEMS = frozenset(
    {
        "web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call", "computer_call",
        "computer_call_output", "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output",
        "apply_patch_call", "apply_patch_call_output", "mcp_call", "mcp_list_tools", "mcp_approval_request",
        "mcp_approval_response", "tool_search_call", "tool_search_output", "program", "program_output",
        "additional_tools",  # its tools are read by request.py; as history it says nothing
    }
)  # fmt: skip


def parse_input(value, namespaced: dict | None = None) -> list[Message]:
    """`namespaced`: (namespace, name) -> the tool's upstream name, for the calls of namespaced tools."""
    if isinstance(value, str) and value:
        return [Message("user", [Text(value)])]
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'input' must be a non-empty string or a non-empty array of items.", param="input")
    messages: list[Message] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidRequest("Each input item must be an object.", param=f"input[{i}]")
        role, blocks = _item(item, f"input[{i}]", namespaced or {})
        if not blocks:
            continue
        if role != "system" and messages and messages[-1].role == role:
            messages[-1].content.extend(blocks)
        else:
            messages.append(Message(role, blocks))
    if not any(message.role == "user" for message in messages):
        raise InvalidRequest("'input' must contain at least one user message or tool output.", param="input")
    return messages


def _item(item: dict, param: str, namespaced: dict) -> tuple[str, list]:
    kind = item.get("type", "message")  # EasyInputMessage may omit its type
    if not isinstance(kind, str):  # a list or object would not even hash for the lookups below
        raise InvalidRequest(f"Invalid type for '{param}.type': expected a string.", param=f"{param}.type")
    if kind == "message":
        return _message(item, param)
    if kind == "function_call":
        name = _name(item, param, namespaced)
        return "assistant", [ToolUse(_call_id(item, param), name, _arguments(item, param))]
    if kind == "custom_tool_call":
        text = item.get("input")
        if not isinstance(text, str):
            raise InvalidRequest("A custom_tool_call needs a string input.", param=f"{param}.input")
        return "assistant", [ToolUse(_call_id(item, param), _name(item, param, namespaced), {CUSTOM_INPUT: text})]
    if kind in ("function_call_output", "custom_tool_call_output"):
        content = _output_content(item.get("output"), f"{param}.output")
        return "user", [ToolResult(tool_use_id=_call_id(item, param), content=content)]
    if kind == "reasoning":
        return "assistant", reasoning.open_sealed(item.get("encrypted_content")) or []
    if kind in HOSTED_CALL_ITEMS:
        return "", []
    if kind == "item_reference":
        raise InvalidRequest("item_reference is not supported; send the item itself.", param=f"{param}.type")
    raise InvalidRequest(f"Unsupported input item type: {kind!r}.", param=f"{param}.type")


def _message(item: dict, param: str) -> tuple[str, list]:
    role, content = item.get("role"), item.get("content")
    if role in ("system", "developer"):
        return "system", _texts(content, f"{param}.content", ("input_text",))
    if role == "assistant":
        texts = _texts(content, f"{param}.content", ("output_text", "input_text", "refusal"))
        return "assistant", [text for text in texts if text.text.strip()]  # P-6
    if role == "user":
        return "user", _user_parts(content, f"{param}.content") or [Text("(empty)")]  # P-6
    raise InvalidRequest(
        f"Invalid value: {role!r}. Supported values are: 'user', 'assistant', 'system' and 'developer'.",
        param=f"{param}.role",
    )


def _texts(content, param: str, kinds: tuple[str, ...]) -> list[Text]:
    if isinstance(content, str):
        return [Text(content)] if content else []
    if not isinstance(content, list):
        raise InvalidRequest("Content must be a string or an array of content parts.", param=param)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        field = "refusal" if kind == "refusal" else "text"
        if kind not in kinds or not isinstance(part.get(field), str):
            raise InvalidRequest(f"Expected a part of type {' or '.join(kinds)}.", param=f"{param}[{j}]")
        if part[field]:
            texts.append(Text(part[field], cache_control=_mark(part)))
    return texts


def _mark(part: dict) -> dict | None:
    """Anthropic-style cache_control on a text part, kept for an Anthropic upstream (the breakpoints layer of
    proxy/optimize puts it there; the OpenAI Chat parser keeps it the same way, LiteLLM's convention)."""
    value = part.get("cache_control")
    return value if isinstance(value, dict) else None


def _user_parts(content, param: str) -> list:
    if isinstance(content, str):
        return [Text(content)] if content else []
    if not isinstance(content, list):
        raise InvalidRequest("Content must be a string or an array of content parts.", param=param)
    blocks = []
    for j, part in enumerate(content):
        block = _part(part, f"{param}[{j}]")
        if block is not None:
            blocks.append(block)
    return blocks


def _part(part, param: str):
    """One user content part (also a part of a tool output): text, image or PDF; None for empty text."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text"):
        if not isinstance(part.get("text"), str):
            raise InvalidRequest(f"An {kind} part needs a text string.", param=f"{param}.text")
        return Text(part["text"], cache_control=_mark(part)) if part["text"] else None
    if kind == "input_image":
        return _image(part, param)
    if kind == "input_file":
        return _document(part, param)
    if kind == "input_audio":
        raise InvalidRequest("Audio input is not supported by this gateway.", param=param)
    raise InvalidRequest(f"Unsupported content part type: {kind!r}.", param=f"{param}.type")


def _image(part: dict, param: str) -> Image:
    if part.get("file_id"):
        raise InvalidRequest(
            "input_image.file_id is not supported by this gateway; send image_url as a data: or https URL.",
            param=f"{param}.file_id",
        )
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        raise InvalidRequest("input_image needs an image_url.", param=f"{param}.image_url")
    return image_from_url(url, f"{param}.image_url")


def _document(part: dict, param: str) -> Document:
    for unsupported in ("file_id", "file_url"):
        if part.get(unsupported):
            raise InvalidRequest(
                f"input_file.{unsupported} is not supported by this gateway; send the PDF as file_data.",
                param=f"{param}.{unsupported}",
            )
    return pdf_document(part.get("file_data"), f"{param}.file_data")


def _output_content(output, param: str) -> list:
    """A tool output: a string, or parts (input_text / input_image / input_file)."""
    if output is None or isinstance(output, str):
        return [Text(output)] if output else []
    if not isinstance(output, list):
        raise InvalidRequest("A tool output must be a string or an array of content parts.", param=param)
    return [block for j, part in enumerate(output) if (block := _part(part, f"{param}[{j}]")) is not None]


def _call_id(item: dict, param: str) -> str:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"A {item.get('type')} item needs a call_id.", param=f"{param}.call_id")
    return sanitize_tool_id(call_id)  # P-16: the same repair as on the call, so the pair still matches


def _name(item: dict, param: str, namespaced: dict | None = None) -> str:
    """A call's tool name as the upstream knows it (a namespaced tool's may differ, see request.py)."""
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"A {item.get('type')} item needs a name.", param=f"{param}.name")
    namespace = item.get("namespace")
    return namespaced.get((namespace, name), name) if namespace and namespaced else name


def _arguments(item: dict, param: str) -> dict:
    """A caller's own history: invalid JSON is the caller's bug, so say where it is (400) rather than guess
    (the same policy as formats.openai)."""
    raw = item.get("arguments")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise InvalidRequest("function_call arguments must be a JSON string.", param=f"{param}.arguments")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"function_call arguments are not valid JSON: {exc}", param=f"{param}.arguments") from None
    return value if isinstance(value, dict) else {"value": value}
