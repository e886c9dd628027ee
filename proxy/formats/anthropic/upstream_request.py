"""Upstream side: the body the gateway sends to Anthropic, from a ChatRequest that came from another format
(§5.3, §5.4), or from an Anthropic caller's own body (passthrough_request).

Anthropic validates more strictly than OpenAI, so render_request repairs what OpenAI clients routinely send:
system messages anywhere (hoisted), runs of same-role or tool messages (merged into one turn, tool results first,
P-3), empty turns (P-6), a first assistant turn, prefill ending in whitespace, orphan tool calls/results (P-4),
out-of-range sampling parameters (P-11, P-12), thinking constraints (P-18, P-20) and too many cache breakpoints
(P-14). `response_format` json_schema is done with a forced `json_response` tool; the response side
(response.py, stream.py) turns that tool call back into text.
"""

from ...canonical import (
    EFFORT_BUDGETS,
    NO_THINKING_EFFORTS,
    ChatRequest,
    Message,
    RedactedThinking,
    TargetOptions,
    Text,
    Thinking,
    ToolUse,
)
from .. import thinking_seal
from .wire import block_to_wire, is_blank_text

JSON_TOOL_NAME = "json_response"
JSON_TOOL_DESCRIPTION = "Respond with a JSON object matching this schema."
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
MIN_THINKING_BUDGET = 1024
EFFORTS = frozenset(EFFORT_BUDGETS)
MAX_CACHE_BREAKPOINTS = 4
MISSING_TOOL_RESULT = "(no result)"


# OAuth-authenticated requests (Claude subscriptions) must open their system prompt with this block.
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."


def with_identity(body: dict) -> dict:
    """`body` with IDENTITY as its first system block, unless it already starts so (a Claude Code request)."""
    system = body.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) and system else list(system or [])
    first = blocks[0] if blocks and isinstance(blocks[0], dict) else {}
    if str(first.get("text", "")).startswith(IDENTITY):
        return body
    return {**body, "system": [{"type": "text", "text": IDENTITY}, *blocks]}


def passthrough_request(body: dict, target: TargetOptions) -> dict:
    """Same-format traffic: only `model` changes; everything else (beta fields, thinking signatures, the billing
    block, cache_control) must stay byte-identical, and assigning an existing key keeps its position. The one
    exception: thinking blocks this gateway minted from another upstream's reasoning (formats/thinking_seal)
    are removed, since Anthropic would refuse their signatures; Anthropic's own blocks are left untouched."""
    forwarded = dict(body)
    forwarded["model"] = target.remote_model
    messages = body.get("messages")
    if isinstance(messages, list) and any(_has_minted(m) for m in messages):
        forwarded["messages"] = [_without_minted(m) if _has_minted(m) else m for m in messages]
    return forwarded


def _has_minted(message) -> bool:
    """Runs on every pass-through request: only assistant turns can hold thinking, so only they are looked at."""
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return False
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "thinking" and thinking_seal.is_minted(b.get("signature"))
        for b in content
    )


def _without_minted(message: dict) -> dict:
    kept = [b for b in message["content"] if not (isinstance(b, dict) and thinking_seal.is_minted(b.get("signature")))]
    return {**message, "content": kept or [{"type": "text", "text": "(empty)"}]}


def render_request(req: ChatRequest, target: TargetOptions) -> dict:
    json_schema = req.response_format is not None and req.response_format.type == "json_schema"
    max_tokens = req.max_tokens or target.default_max_tokens  # P-9
    if target.max_output_tokens:
        max_tokens = min(max_tokens, target.max_output_tokens)  # P-10
    thinking = None if json_schema else _thinking(req)
    if thinking is not None and thinking["type"] == "enabled":
        thinking, max_tokens = _fit_budget(thinking, max_tokens, target.max_output_tokens)

    body: dict = {"model": target.remote_model, "max_tokens": max_tokens}
    system = _system(req)
    if system:
        body["system"] = system
    body["messages"] = _turns(req.messages, keep_thinking=thinking is not None)
    _sampling(body, req, thinking_on=thinking is not None)
    stop = [s for s in req.stop if s.strip()]  # Anthropic rejects whitespace-only stop sequences
    if stop:
        body["stop_sequences"] = stop
    _tools(body, req, forced_json=json_schema, thinking_on=thinking is not None)
    if thinking is not None:
        body["thinking"] = thinking
        if thinking["type"] == "adaptive" and req.thinking.effort in EFFORTS:
            body["output_config"] = {"effort": req.thinking.effort}
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.stream:
        body["stream"] = True
    _limit_cache_breakpoints(body)
    return body


# --- system -------------------------------------------------------------------------------------------------


def _system(req: ChatRequest) -> list[dict]:
    """P-2: req.system, then every system message in conversation order, as text blocks."""
    texts = list(req.system)
    for message in req.messages:
        if message.role == "system":
            texts.extend(b for b in message.content if isinstance(b, Text))
    if req.response_format is not None and req.response_format.type == "json_object":
        texts.append(Text(JSON_OBJECT_INSTRUCTION))
    return [block_to_wire(t) for t in texts if not is_blank_text(t)]


# --- messages -----------------------------------------------------------------------------------------------


def _turns(messages: list[Message], *, keep_thinking: bool) -> list[dict]:
    turns: list[dict] = []
    for message in messages:
        if message.role == "system":
            continue  # hoisted by _system
        blocks = [block_to_wire(b) for b in message.content if _keep(b, keep_thinking)]
        if not blocks and message.role == "assistant":
            continue  # an empty assistant turn says nothing; dropping it lets its neighbours merge
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"].extend(blocks)  # P-7: runs of user/tool (or assistant) messages -> one turn
        else:
            turns.append({"role": message.role, "content": blocks})
    _pair_tool_results(turns)
    for turn in turns:
        first = ("tool_result",) if turn["role"] == "user" else ("thinking", "redacted_thinking")
        turn["content"].sort(key=lambda b: b["type"] not in first)  # P-3 (stable: order otherwise kept)
        if not turn["content"]:
            turn["content"].append({"type": "text", "text": "(empty)"})  # P-6: only user turns get here
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": "."}]})
    _trim_prefill(turns)
    return turns or [{"role": "user", "content": [{"type": "text", "text": "(empty)"}]}]  # Anthropic needs one


def _keep(block, keep_thinking: bool) -> bool:
    if is_blank_text(block):
        return False  # P-6
    if isinstance(block, Thinking):
        # P-20: unsigned thinking, and thinking this gateway signed itself, never goes to Anthropic
        return keep_thinking and bool(block.signature) and not thinking_seal.is_minted(block.signature)
    if isinstance(block, RedactedThinking):
        return keep_thinking
    return True


def _pair_tool_results(turns: list[dict]) -> None:
    """P-4: every tool_use needs its tool_result in the next user turn, and a result without a call is rejected.
    Missing results get a placeholder; orphan results are dropped."""
    for i, turn in enumerate(turns):
        if turn["role"] != "user":
            continue
        previous = turns[i - 1] if i else None
        called = [b["id"] for b in previous["content"] if b["type"] == "tool_use"] if previous else []
        turn["content"] = [b for b in turn["content"] if b["type"] != "tool_result" or b["tool_use_id"] in called]
        answered = {b["tool_use_id"] for b in turn["content"] if b["type"] == "tool_result"}
        turn["content"][:0] = [
            {"type": "tool_result", "tool_use_id": tool_id, "content": [{"type": "text", "text": MISSING_TOOL_RESULT}]}
            for tool_id in called
            if tool_id not in answered
        ]


def _trim_prefill(turns: list[dict]) -> None:
    """A final assistant turn is a prefill, which Anthropic rejects if it ends in whitespace."""
    if not turns or turns[-1]["role"] != "assistant":
        return
    content = turns[-1]["content"]
    while content and content[-1]["type"] == "text":
        content[-1]["text"] = content[-1]["text"].rstrip()
        if content[-1]["text"]:
            break
        content.pop()
    if not content:
        turns.pop()


# --- sampling, tools, thinking ------------------------------------------------------------------------------


def _sampling(body: dict, req: ChatRequest, *, thinking_on: bool) -> None:
    if thinking_on:  # P-18: thinking rejects temperature and top_k, and top_p below 0.95
        if req.top_p is not None and 0.95 <= req.top_p <= 1:
            body["top_p"] = req.top_p
        return
    if req.temperature is not None:
        body["temperature"] = min(max(req.temperature, 0.0), 1.0)  # P-11
    elif req.top_p is not None:
        body["top_p"] = req.top_p  # P-12: several Claude models reject temperature and top_p together
    if req.top_k is not None:
        body["top_k"] = req.top_k


def _tools(body: dict, req: ChatRequest, *, forced_json: bool, thinking_on: bool) -> None:
    tools = [_tool(t) for t in req.tools]
    if forced_json:
        schema = req.response_format.schema or {"type": "object"}
        tools.append({"name": JSON_TOOL_NAME, "description": JSON_TOOL_DESCRIPTION, "input_schema": schema})
    if not tools:
        return  # Anthropic rejects tool_choice without tools
    body["tools"] = tools
    choice = _tool_choice(req, forced_json=forced_json, thinking_on=thinking_on)
    if choice is not None:
        body["tool_choice"] = choice


def _tool_choice(req: ChatRequest, *, forced_json: bool, thinking_on: bool) -> dict | None:
    if forced_json:
        return {"type": "tool", "name": JSON_TOOL_NAME}
    choice = req.tool_choice
    if choice is None or choice.type == "none":
        return None if choice is None else {"type": "none"}
    if choice.type in ("any", "tool") and thinking_on:
        wire = {"type": "auto"}  # P-18: thinking rejects forced tool use
    else:
        wire = {"type": choice.type, "name": choice.name} if choice.type == "tool" else {"type": choice.type}
    if choice.disable_parallel:
        wire["disable_parallel_tool_use"] = True
    return wire


def _tool(tool) -> dict:
    wire = {"name": tool.name}
    if tool.description is not None:
        wire["description"] = tool.description
    wire["input_schema"] = tool.input_schema or {"type": "object", "properties": {}}
    if tool.strict is not None:
        wire["strict"] = tool.strict
    if tool.cache_control:
        wire["cache_control"] = tool.cache_control
    return wire


def _thinking(req: ChatRequest) -> dict | None:
    config = req.thinking
    if config is None or config.type == "disabled" or config.effort in NO_THINKING_EFFORTS:
        return None
    if _last_tool_turn_unsigned(req.messages):
        return None  # P-20: Anthropic would reject the request; answering without thinking is better than a 400
    if config.type == "adaptive":
        return {"type": "adaptive"}
    budget = config.budget_tokens or EFFORT_BUDGETS.get(config.effort, MIN_THINKING_BUDGET)
    return {"type": "enabled", "budget_tokens": max(budget, MIN_THINKING_BUDGET)}  # P-18


def _last_tool_turn_unsigned(messages: list[Message]) -> bool:
    """True when the last assistant turn (a run of assistant messages) calls tools without a signed thinking block."""
    blocks: list = []
    for message in reversed(messages):
        if message.role == "assistant":
            blocks[:0] = message.content
        elif message.role == "user" and blocks:
            break
    signed = any(isinstance(b, RedactedThinking) or (isinstance(b, Thinking) and b.signature) for b in blocks)
    return any(isinstance(b, ToolUse) for b in blocks) and not signed


def _fit_budget(thinking: dict, max_tokens: int, cap: int | None) -> tuple[dict | None, int]:
    """P-18: budget_tokens < max_tokens. Raise max_tokens by the budget (keeping the caller's room for the answer)
    within the cap; if the cap leaves no room for a 1024-token budget, go without thinking."""
    budget = thinking["budget_tokens"]
    if max_tokens > budget:
        return thinking, max_tokens
    max_tokens = budget + max_tokens if cap is None else min(budget + max_tokens, cap)
    budget = min(budget, max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        return None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


# --- cache breakpoints --------------------------------------------------------------------------------------


def _limit_cache_breakpoints(body: dict) -> None:
    """P-14: at most 4 blocks may carry cache_control. The cache is a prefix over tools, system, messages; the
    last breakpoints cover the longest prefix, so those are the ones kept."""
    marked = [block for block in _cacheable(body) if "cache_control" in block]
    for block in marked[:-MAX_CACHE_BREAKPOINTS]:
        del block["cache_control"]


def _cacheable(body: dict):
    yield from body.get("tools", ())
    yield from body.get("system", ())
    for turn in body["messages"]:
        for block in turn["content"]:
            yield from block.get("content", ()) if block["type"] == "tool_result" else ()
            yield block
