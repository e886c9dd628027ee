"""A complete Response object given again (the response cache's hits, proxy/optimize/cache.py): whole, or as the
SSE stream a live answer would have been, with the events and numbering StreamEncoder sends (R-1).

The object is stored as the caller got it and its output items are given back byte-identical, not through the
canonical model: a reasoning item's encrypted_content (OpenAI's own, or the gateway's seal of signed thinking,
R-5), custom and hosted tool calls and namespaces have no canonical form that would bring them back unchanged.

    answer(stored, body) -> dict    the object as this request's answer: a new response id and created_at (a
                                    stored copy must not collide with the first, R-8), and this request's own
                                    value of each echoed field the cache key ignores (store, metadata, user, ...)
    events(response) -> bytes       the stream: response.created, response.in_progress, per output item
                                    output_item.added, its deltas, output_item.done, then response.completed
                                    (response.incomplete for an incomplete one), holding `response` itself
"""

import itertools

from . import ids
from .stream import _frame

ECHOED_DEFAULTS = {"store": True, "metadata": {}, "user": None, "safety_identifier": None, "prompt_cache_key": None}


def answer(stored: dict, body: dict) -> dict:
    response = {**stored, "id": ids.new_id(ids.RESPONSE), "created_at": ids.now()}
    for name, default in ECHOED_DEFAULTS.items():
        if name in response:  # only what the object showed: an upstream's own object keeps its own key set
            value = body.get(name)
            response[name] = default if value is None else value
    return response


def events(response: dict) -> bytes:
    numbers = itertools.count()
    out = []

    def emit(kind: str, fields: dict) -> None:
        out.append(_frame(kind, fields, next(numbers)))

    start = {**response, "status": "in_progress", "output": [], "usage": None}
    for name in ("incomplete_details", "error"):
        if name in start:
            start[name] = None
    emit("response.created", {"response": start})
    emit("response.in_progress", {"response": start})
    for index, item in enumerate(response.get("output") or []):
        if isinstance(item, dict):
            _item(emit, index, item)
    terminal = "response.incomplete" if response.get("status") == "incomplete" else "response.completed"
    emit(terminal, {"response": response})
    return b"".join(out)


def _item(emit, index: int, item: dict) -> None:
    kind, at = item.get("type"), {"item_id": item.get("id"), "output_index": index}
    if kind == "message":
        emit("response.output_item.added", {"output_index": index, "item": _open(item, content=[])})
        for j, part in enumerate(item.get("content") or []):
            if isinstance(part, dict):
                _part(emit, {**at, "content_index": j}, part)
    elif kind == "reasoning":
        opened = {k: v for k, v in _open(item, summary=[]).items() if k != "encrypted_content"}
        emit("response.output_item.added", {"output_index": index, "item": opened})
        for j, part in enumerate(item.get("summary") or []):
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str):
                _summary(emit, {**at, "summary_index": j}, part, text)
    elif kind == "function_call":
        emit("response.output_item.added", {"output_index": index, "item": _open(item, arguments="")})
        arguments = item.get("arguments") if isinstance(item.get("arguments"), str) else ""
        emit("response.function_call_arguments.delta", {**at, "delta": arguments})
        emit("response.function_call_arguments.done", {**at, "arguments": arguments})
    elif kind == "custom_tool_call":
        emit("response.output_item.added", {"output_index": index, "item": _open(item, input="")})
        text = item.get("input") if isinstance(item.get("input"), str) else ""
        if text:
            emit("response.custom_tool_call_input.delta", {**at, "delta": text})
        emit("response.custom_tool_call_input.done", {**at, "input": text})
    else:  # a hosted tool's call (web_search_call, ...): announced and finished, nothing streamed between
        emit("response.output_item.added", {"output_index": index, "item": _open(item)})
    emit("response.output_item.done", {"output_index": index, "item": item})


def _open(item: dict, **empty) -> dict:
    """The item as output_item.added shows it: in progress, its content still empty."""
    opened = {**item, **empty}
    if "status" in opened:
        opened["status"] = "in_progress"
    return opened


def _part(emit, at: dict, part: dict) -> None:
    if part.get("type") == "refusal":
        refusal = part.get("refusal") if isinstance(part.get("refusal"), str) else ""
        emit("response.content_part.added", {**at, "part": {**part, "refusal": ""}})
        emit("response.refusal.delta", {**at, "delta": refusal})
        emit("response.refusal.done", {**at, "refusal": refusal})
    else:
        text = part.get("text") if isinstance(part.get("text"), str) else ""
        emit("response.content_part.added", {**at, "part": {**part, "text": "", "annotations": []}})
        emit("response.output_text.delta", {**at, "delta": text, "logprobs": []})
        emit("response.output_text.done", {**at, "text": text, "logprobs": []})
    emit("response.content_part.done", {**at, "part": part})


def _summary(emit, at: dict, part: dict, text: str) -> None:
    emit("response.reasoning_summary_part.added", {**at, "part": {**part, "text": ""}})
    emit("response.reasoning_summary_text.delta", {**at, "delta": text})
    emit("response.reasoning_summary_text.done", {**at, "text": text})
    emit("response.reasoning_summary_part.done", {**at, "part": part})
