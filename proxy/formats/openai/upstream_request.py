"""ChatRequest -> body for an OpenAI-compatible upstream (docs/translation.md §5.1).

Only OpenAI Chat Completions fields come out: nothing Anthropic-only (thinking, output_config, metadata,
context_management, cache_control, top_k) survives, because strict compatible servers reject unknown fields.
What each upstream accepts beyond the basics comes from its preset (`target.capabilities`, accounts/presets.py):
the max-tokens name, how reasoning is asked for and for which models, stream usage, tool_choice, parallel tool
calls, images, and whether thinking goes back as `reasoning_content`.
"""

from proxy.canonical import ChatRequest, TargetOptions, ToolChoice

from .messages_out import render_messages
from .tool_names import shorten

MAX_STOP_SEQUENCES = 4

# Anthropic thinking budget -> reasoning_effort (§5.9, LiteLLM's thresholds): below 1024 minimal, below 2048 low,
# below 4096 medium, else high.
EFFORT_BY_BUDGET = ((1024, "minimal"), (2048, "low"), (4096, "medium"))


def drops_sampling(target: TargetOptions) -> bool:
    """Reasoning models of some providers (OpenAI's o-series, gpt-5) reject temperature, top_p and stop."""
    caps = target.capabilities
    return not caps.sampling_with_reasoning and caps.reasons(target.remote_model)


def render_request(req: ChatRequest, target: TargetOptions) -> dict:
    caps = target.capabilities
    messages = render_messages(req.system, req.messages, images=caps.images, echo_reasoning=caps.reasoning_echo)
    body: dict = {"model": target.remote_model, "messages": messages}
    if req.max_tokens is not None:
        max_tokens = req.max_tokens
        if target.max_output_tokens:
            max_tokens = min(max_tokens, target.max_output_tokens)  # P-10
        body[caps.max_tokens_param] = max_tokens
    if not drops_sampling(target):
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.stop:
            body["stop"] = req.stop[:MAX_STOP_SEQUENCES]
    if req.stream:
        body["stream"] = True
        if caps.stream_usage:
            body["stream_options"] = {"include_usage": True}  # the ledger needs exact usage
    if req.tools and not (req.tool_choice and req.tool_choice.type == "none" and not caps.tool_choice):
        body["tools"] = [_tool(tool) for tool in req.tools]  # (tool_choice none, unsayable: no tools at all)
        if req.tool_choice:
            _add_tool_choice(body, req.tool_choice, caps)
    if effort := reasoning_effort(req, target):
        if caps.reasoning == "object":
            body["reasoning"] = {"effort": effort}
        else:
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


def _add_tool_choice(body: dict, choice: ToolChoice, caps) -> None:
    if caps.tool_choice:
        if choice.type == "tool" and choice.name:
            body["tool_choice"] = {"type": "function", "function": {"name": shorten(choice.name)}}
        else:
            body["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(choice.type, "auto")
    if choice.disable_parallel and caps.parallel_tool_calls:
        body["parallel_tool_calls"] = False


def reasoning_effort(req: ChatRequest, target: TargetOptions) -> str | None:
    """The request's thinking as an OpenAI effort (§5.9), None when the provider's preset says this model takes
    no reasoning parameter (Chat and Responses)."""
    thinking = req.thinking
    if thinking is None or thinking.type == "disabled" or not target.capabilities.reasons(target.remote_model):
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
