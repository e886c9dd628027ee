"""Canonical messages -> OpenAI `messages` for an upstream (docs/translation.md §5.2).

Each canonical message is rendered on its own, then the list is normalised: every tool call gets exactly one
answer right after its assistant message (P-3, P-4), and same-role user/assistant neighbours are merged (P-7).
cache_control is dropped everywhere (§5.9.1): OpenAI-style providers cache on their own. Two switches come from
the provider's preset: `images` (False: each image becomes a short text note) and `echo_reasoning` (True: an
assistant turn's thinking goes back as `reasoning_content`, which DeepSeek's reasoner needs; False: thinking and
redacted thinking vanish without a trace).
"""

import orjson

from proxy.canonical import Document, Image, Message, Text, Thinking, ToolResult, ToolUse

from .. import thinking_seal
from .tool_names import shorten

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"  # P-24: changes per request, breaks prefix caching
MOVED_IMAGE_NOTE = "[image: attached in the following user message]"  # P-5
NO_OUTPUT = "(no output)"
NO_RESULT = "(no result)"
NO_IMAGES_NOTE = "[image omitted: this model does not accept images]"


def render_messages(system: list[Text], messages: list[Message], *, images=True, echo_reasoning=False) -> list[dict]:
    rendered = []
    if system_text := _join_texts(system):
        rendered.append({"role": "system", "content": system_text})
    for message in messages:
        if message.role == "system":
            if text := _join_texts(message.content):
                rendered.append({"role": "system", "content": text})
        elif message.role == "assistant":
            rendered.extend(_assistant(message.content, echo_reasoning))
        else:
            rendered.extend(_user(message.content))
    rendered = _merge_neighbours(_pair_tool_messages(rendered))
    return rendered if images else [_without_images(m) for m in rendered]


def _join_texts(blocks) -> str:
    texts = (b.text for b in blocks if isinstance(b, Text) and b.text and not b.text.startswith(BILLING_HEADER_PREFIX))
    return "\n\n".join(texts)


def _assistant(blocks, echo_reasoning: bool) -> list[dict]:
    """Thinking and redacted thinking are dropped (OpenAI has no field that would carry them back), unless the
    upstream wants its reasoning echoed: then the thinking text becomes `reasoning_content`."""
    text = "".join(b.text for b in blocks if isinstance(b, Text))
    reasoning = "".join(b.thinking for b in blocks if _echoable(b)) if echo_reasoning else ""
    tool_calls = [
        {
            "id": b.id,
            "type": "function",
            "function": {"name": shorten(b.name), "arguments": orjson.dumps(b.input).decode()},
        }
        for b in blocks
        if isinstance(b, ToolUse)
    ]
    if not text and not tool_calls:
        return []  # a turn of thinking only: nothing to send (its reasoning alone would be an empty answer)
    message = {"role": "assistant", "content": text or None}  # P-6: null, not "", next to tool calls
    if reasoning:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    return [message]


def _echoable(block) -> bool:
    """Reasoning this gateway minted (its signature verifies over exactly this text) or a caller's own unsigned
    reasoning; never another provider's signed thinking, nor a minted block whose text was changed."""
    return isinstance(block, Thinking) and (not block.signature or thinking_seal.verifies(block.thinking, block.signature))


def _user(blocks) -> list[dict]:
    """P-3: one tool message per tool result, first and in block order; then one user message for the rest,
    including media moved out of tool results (P-5)."""
    tool_messages, parts, moved = [], [], []
    for block in blocks:
        if isinstance(block, ToolResult):
            content, media = _tool_result_content(block)
            tool_messages.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": content})
            moved.extend(media)
        elif part := _part(block):
            parts.append(part)
    parts.extend(moved)
    if not parts:
        return tool_messages
    if all(part["type"] == "text" for part in parts):
        return [*tool_messages, {"role": "user", "content": "\n\n".join(part["text"] for part in parts)}]
    return [*tool_messages, {"role": "user", "content": parts}]


def _tool_result_content(result: ToolResult) -> tuple[str, list[dict]]:
    texts, moved = [], []
    for block in result.content:
        part = _part(block)
        if part is None:
            continue
        if part["type"] == "text":
            texts.append(part["text"])
        else:
            texts.append(MOVED_IMAGE_NOTE)
            moved.append(part)
    text = "\n".join(texts) or NO_OUTPUT
    return ("Error: " + text if result.is_error else text), moved


def _part(block) -> dict | None:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text} if block.text else None
    if isinstance(block, Image):
        url = block.url or f"data:{block.media_type};base64,{block.data}"
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(block, Document):
        return _document_part(block)
    return None


def _document_part(document: Document) -> dict:
    source = document.source
    if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        file_data = f"data:application/pdf;base64,{source.get('data', '')}"
        return {"type": "file", "file": {"file_data": file_data, "filename": "document.pdf"}}
    if source.get("type") == "text":
        text = source.get("data", "")
    elif source.get("type") == "content":
        content = source.get("content")
        text = content if isinstance(content, str) else "\n".join(b.get("text", "") for b in content or [])
    elif source.get("type") == "url":
        text = f"[document: {source.get('url', '')}]"
    else:
        text = "[document omitted: not supported by this upstream]"
    if document.title:
        text = f"{document.title}\n\n{text}"
    return {"type": "text", "text": text}


def _pair_tool_messages(messages: list[dict]) -> list[dict]:
    """OpenAI wants each assistant tool_calls message followed at once by one tool message per call id.
    Answers that match no call are dropped; calls left unanswered get a placeholder (P-4). A system message
    found between a call and its answers moves after the answers."""
    paired: list[dict] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        i += 1
        if message["role"] == "tool":
            continue  # orphan: no tool call right before it
        paired.append(message)
        call_ids = [call["id"] for call in message.get("tool_calls") or []]
        if not call_ids:
            continue
        answers: dict[str, dict] = {}
        displaced = []
        while i < len(messages) and messages[i]["role"] in ("tool", "system"):
            follower = messages[i]
            i += 1
            if follower["role"] == "system":
                displaced.append(follower)
            elif follower["tool_call_id"] in call_ids and follower["tool_call_id"] not in answers:
                answers[follower["tool_call_id"]] = follower
        paired.extend(answers.values())
        paired.extend(
            {"role": "tool", "tool_call_id": call_id, "content": NO_RESULT}
            for call_id in call_ids
            if call_id not in answers
        )
        paired.extend(displaced)
    return paired


def _merge_neighbours(messages: list[dict]) -> list[dict]:
    """P-7: some OpenAI-compatible upstreams reject two user or two assistant messages in a row."""
    merged: list[dict] = []
    for message in messages:
        previous = merged[-1] if merged else None
        if previous is None or previous["role"] != message["role"] or message["role"] not in ("user", "assistant"):
            merged.append(message)
        elif message["role"] == "user":
            merged[-1] = {"role": "user", "content": _merge_user_content(previous["content"], message["content"])}
        else:
            merged[-1] = _merge_assistant(previous, message)
    return merged


def _merge_user_content(first, second):
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}"
    return _as_parts(first) + _as_parts(second)


def _as_parts(content) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _merge_assistant(first: dict, second: dict) -> dict:
    text = "\n\n".join(m["content"] for m in (first, second) if m["content"])
    merged = {"role": "assistant", "content": text or None}
    if reasoning := "".join(m.get("reasoning_content", "") for m in (first, second)):
        merged["reasoning_content"] = reasoning
    tool_calls = (first.get("tool_calls") or []) + (second.get("tool_calls") or [])
    if tool_calls:
        merged["tool_calls"] = tool_calls
    return merged


def _without_images(message: dict) -> dict:
    """A user message's image parts as a text note, for upstreams whose preset says they take no images."""
    content = message.get("content")
    if message["role"] != "user" or not isinstance(content, list):
        return message
    texts = [part["text"] if part["type"] == "text" else NO_IMAGES_NOTE for part in content]
    return {"role": "user", "content": "\n\n".join(texts)}
