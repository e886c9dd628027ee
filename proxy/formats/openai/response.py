"""Non-streaming `chat.completion` bodies, both directions (docs/translation.md §4.1, §5.10)."""

import time

import orjson

from proxy.canonical import ChatRequest, ChatResponse, Text, Thinking, ToolUse
from proxy.ids import completion_id, message_id, sanitize_tool_id, tool_use_id

from .. import thinking_seal
from .mappings import finish_reason_for, parse_arguments, stop_reason_for, usage_from_openai, usage_to_openai
from .tool_names import tool_name_map


def render_response(resp: ChatResponse, req: ChatRequest) -> dict:
    """For an OpenAI caller. Tool names are the originals already (canonical never holds shortened ones)."""
    text = "".join(block.text for block in resp.content if isinstance(block, Text))
    reasoning = "".join(block.thinking for block in resp.content if isinstance(block, Thinking))
    tool_calls = [render_tool_call(block) for block in resp.content if isinstance(block, ToolUse)]
    message: dict = {"role": "assistant", "content": text or None, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = reasoning  # non-standard; what DeepSeek-aware clients read (§5.9)
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason_for(resp.stop_reason, bool(tool_calls)),
                "logprobs": None,
            }
        ],
        "usage": usage_to_openai(resp.usage),
    }


def render_tool_call(block: ToolUse) -> dict:
    arguments = orjson.dumps(block.input).decode()
    return {"id": block.id, "type": "function", "function": {"name": block.name, "arguments": arguments}}


def parse_response(body: dict, req: ChatRequest) -> ChatResponse:
    """An upstream's answer, choices[0] only. Order: thinking, text, tool calls (§5.10)."""
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    names = tool_name_map(req)
    content: list = []

    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append(Thinking(thinking=reasoning, signature=thinking_seal.mint(reasoning)))
    if text := _message_text(message.get("content")):
        content.append(Text(text))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append(Text(refusal))
    for call in message.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        name = function.get("name") or ""
        content.append(
            ToolUse(
                id=sanitize_tool_id(call.get("id")),
                name=names.get(name, name),
                input=parse_arguments(function.get("arguments")),
            )
        )
    function_call = message.get("function_call")
    if isinstance(function_call, dict) and function_call.get("name"):  # legacy
        name = function_call["name"]
        arguments = parse_arguments(function_call.get("arguments"))
        content.append(ToolUse(id=tool_use_id(), name=names.get(name, name), input=arguments))

    has_tool_calls = any(isinstance(block, ToolUse) for block in content)
    stop_reason = stop_reason_for(choice.get("finish_reason"), has_tool_calls)
    if refusal and not has_tool_calls:
        stop_reason = "refusal"
    return ChatResponse(
        id=message_id(),
        model=req.model,
        content=content,
        stop_reason=stop_reason,
        usage=usage_from_openai(body.get("usage")),
    )


def _message_text(content) -> str:
    """A string normally; some compatible servers answer with an array of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
