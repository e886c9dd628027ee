"""ChatRequest -> body for an OpenAI-compatible upstream (protocols.md §5.1).

Only OpenAI Chat Completions fields come out: nothing Anthropic-only (thinking, output_config, metadata,
context_management, cache_control, top_k) survives, because strict compatible servers reject unknown fields.
"""

import re

from proxy.canonical import ChatRequest, TargetOptions, ToolChoice

from .messages_out import render_messages
from .tool_names import shorten

# OpenAI's reasoning models reject `max_tokens` (they want `max_completion_tokens`), `temperature`, `top_p` and
# `stop`. Matched on the last path segment so routed names like "openai/o3-mini" count too.
OPENAI_REASONING_MODEL = re.compile(r"^o[134](-|$)|^gpt-5", re.IGNORECASE)
# Models known to accept `reasoning_effort`: OpenAI's reasoning models plus open reasoning models served by
# OpenAI-compatible servers (DeepSeek R1, QwQ, gpt-oss, anything named "*reason*"). A model outside this list
# gets no reasoning_effort at all: non-reasoning models answer 400 to it.
REASONING_EFFORT_MODEL = re.compile(r"reason|^deepseek-r|^qwq|^gpt-oss", re.IGNORECASE)
MAX_STOP_SEQUENCES = 4

# Anthropic thinking budget -> reasoning_effort (§5.9, LiteLLM's thresholds): below 1024 minimal, below 2048 low,
# below 4096 medium, else high.
EFFORT_BY_BUDGET = ((1024, "minimal"), (2048, "low"), (4096, "medium"))


def _model_name(remote_model: str) -> str:
    return remote_model.rsplit("/", 1)[-1]


def is_openai_reasoning_model(remote_model: str) -> bool:
    return bool(OPENAI_REASONING_MODEL.search(_model_name(remote_model)))


def accepts_reasoning_effort(remote_model: str) -> bool:
    name = _model_name(remote_model)
    return is_openai_reasoning_model(name) or bool(REASONING_EFFORT_MODEL.search(name))


def render_request(req: ChatRequest, target: TargetOptions) -> dict:
    reasoning_model = is_openai_reasoning_model(target.remote_model)
    body: dict = {"model": target.remote_model, "messages": render_messages(req.system, req.messages)}
    if req.max_tokens is not None:
        max_tokens = req.max_tokens
        if target.max_output_tokens:
            max_tokens = min(max_tokens, target.max_output_tokens)  # P-10
        body["max_completion_tokens" if reasoning_model else "max_tokens"] = max_tokens
    if not reasoning_model:
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.stop:
            body["stop"] = req.stop[:MAX_STOP_SEQUENCES]
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # the ledger needs exact usage
    if req.tools:
        body["tools"] = [_tool(tool) for tool in req.tools]
        if req.tool_choice:
            _add_tool_choice(body, req.tool_choice)
    if effort := reasoning_effort(req, target.remote_model):
        body["reasoning_effort"] = effort
    if req.response_format:
        body["response_format"] = _response_format(req.response_format)
    if req.user:
        body["user"] = req.user
    return body


def _tool(tool) -> dict:
    function = {"name": shorten(tool.name)}  # P-15
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.input_schema
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _add_tool_choice(body: dict, choice: ToolChoice) -> None:
    if choice.type == "tool" and choice.name:
        body["tool_choice"] = {"type": "function", "function": {"name": shorten(choice.name)}}
    else:
        body["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(choice.type, "auto")
    if choice.disable_parallel:
        body["parallel_tool_calls"] = False


def reasoning_effort(req: ChatRequest, remote_model: str) -> str | None:
    """The request's thinking as an OpenAI effort (§5.9), None for models that cannot reason (Chat and Responses)."""
    thinking = req.thinking
    if thinking is None or thinking.type == "disabled" or not accepts_reasoning_effort(remote_model):
        return None
    if thinking.type == "adaptive" or thinking.budget_tokens is None:
        return thinking.effort or "medium"
    for below, effort in EFFORT_BY_BUDGET:
        if thinking.budget_tokens < below:
            return effort
    return "high"


def _response_format(response_format) -> dict:
    if response_format.type == "json_object":
        return {"type": "json_object"}
    json_schema: dict = {"name": response_format.name or "output"}
    if response_format.schema is not None:
        json_schema["schema"] = response_format.schema
    if response_format.strict is True:
        json_schema["strict"] = True
    return {"type": "json_schema", "json_schema": json_schema}
