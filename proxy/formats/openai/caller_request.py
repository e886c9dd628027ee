"""OpenAI Chat Completions request (from a caller) -> ChatRequest (docs/translation.md §5.3, §5.4).

Validation errors name the offending field with OpenAI-style paths ("messages[2].tool_calls[0].function.arguments")
because that is what OpenAI SDK users see from OpenAI itself.
"""

from proxy.canonical import (
    EFFORT_BUDGETS,
    NO_THINKING_EFFORTS,
    ChatRequest,
    ResponseFormat,
    ThinkingConfig,
    Tool,
    ToolChoice,
)
from proxy.errors import InvalidRequest

from .messages_in import parse_messages

# reasoning_effort -> thinking budget (§5.9; LiteLLM's defaults). xhigh and max are not in the spec's table:
# they continue the doubling so a caller asking for more effort never gets less budget.


def parse_request(body: dict) -> ChatRequest:
    model = model_of(body, "you must provide a model parameter")
    _reject_unsupported(body)
    stream = body.get("stream") is True
    stream_options = body.get("stream_options")
    tools = _tools(body)
    return ChatRequest(
        model=model,
        messages=parse_messages(body.get("messages")),
        max_tokens=_max_tokens(body),
        stream=stream,
        include_usage=stream and isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
        temperature=number(body, "temperature"),
        top_p=number(body, "top_p"),
        stop=_stop(body.get("stop")),
        tools=tools,
        tool_choice=_tool_choice(body, tools),
        thinking=thinking_from_effort(body.get("reasoning_effort"), "reasoning_effort"),
        response_format=response_format(body.get("response_format"), "response_format", "json_schema"),
        user=_user(body),
    )


def _reject_unsupported(body: dict) -> None:
    """P-13: what we cannot honour is a 400, never silently ignored."""
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("n > 1 is not supported by this gateway; request one choice at a time.", param="n")
    if body.get("logprobs") is True or body.get("top_logprobs") is not None:
        raise InvalidRequest("logprobs are not supported by this gateway.", param="logprobs")
    if body.get("audio") is not None:
        raise InvalidRequest("Audio output is not supported by this gateway.", param="audio")
    if isinstance(body.get("modalities"), list) and "audio" in body["modalities"]:
        raise InvalidRequest("Audio output is not supported by this gateway.", param="modalities")


def model_of(body: dict, missing: str) -> str:
    """The body's model; InvalidRequest when the body is not an object or names none (`missing`: in the API's
    own words)."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(missing, param="model")
    return model


def _max_tokens(body: dict) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            return token_count(body, key)
    return None


def token_count(body: dict, key: str) -> int | None:
    """A token limit (max_tokens, max_completion_tokens, Responses' max_output_tokens): an integer >= 1."""
    value = body.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidRequest(f"Invalid '{key}': expected an integer >= 1.", param=key)
    return value


def number(body: dict, key: str) -> float | None:
    """A sampling number (temperature, top_p), in the OpenAI APIs' wording."""
    value = body.get(key)
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise InvalidRequest(f"Invalid '{key}': expected a number.", param=key)
    return value


def _stop(stop) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise InvalidRequest("Invalid 'stop': expected a string or an array of strings.", param="stop")


def _tools(body: dict) -> list[Tool]:
    for key in ("tools", "functions"):
        if not isinstance(body.get(key) or [], list):
            raise InvalidRequest(f"'{key}' must be an array.", param=key)
    tools = []
    for i, tool in enumerate(body.get("tools") or []):
        param = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise InvalidRequest("Only function tools are supported by this gateway.", param=param)
        tools.append(_function_tool(tool.get("function"), f"{param}.function"))
    for i, function in enumerate(body.get("functions") or []):  # legacy
        tools.append(_function_tool(function, f"functions[{i}]"))
    return tools


def _function_tool(function, param: str) -> Tool:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise InvalidRequest("A function tool needs a name.", param=f"{param}.name")
    parameters = function.get("parameters")
    return Tool(
        name=function["name"],
        input_schema=parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}},
        description=function.get("description"),
        strict=function.get("strict"),
    )


def _tool_choice(body: dict, tools: list[Tool]) -> ToolChoice | None:
    if not tools:  # a tool_choice without tools means nothing, and Anthropic rejects it
        return None
    choice = _choice(body.get("tool_choice"), "tool_choice", tools)
    if choice is None:
        choice = _choice(body.get("function_call"), "function_call", tools)
    if body.get("parallel_tool_calls") is False:
        choice = choice or ToolChoice(type="auto")
        choice.disable_parallel = True
    return choice


def _choice(value, param: str, tools: list[Tool]) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("none", "auto", "required"):
        return ToolChoice(type="any" if value == "required" else value)
    if isinstance(value, dict):
        if value.get("type") == "allowed_tools":
            return _allowed_tools(value.get("allowed_tools") or {}, param, tools)
        name = (value.get("function") or {}).get("name") if "function" in value else value.get("name")
        if value.get("type", "function") == "function" and isinstance(name, str) and name:
            return ToolChoice(type="tool", name=name)
    raise InvalidRequest(f"Invalid '{param}': expected none, auto, required or a function.", param=param)


def _allowed_tools(allowed: dict, param: str, tools: list[Tool]) -> ToolChoice:
    """§5.3: allowed_tools becomes auto/any over the allowed subset (the tools list is filtered in place)."""
    names = {(t.get("function") or {}).get("name") for t in allowed.get("tools") or [] if isinstance(t, dict)}
    tools[:] = [tool for tool in tools if tool.name in names]
    if not tools:
        raise InvalidRequest("allowed_tools names no tool of the request.", param=param)
    return ToolChoice(type="any" if allowed.get("mode") == "required" else "auto")


def thinking_from_effort(effort, param: str) -> ThinkingConfig | None:
    """An OpenAI reasoning effort (Chat's `reasoning_effort`, Responses' `reasoning.effort`) as a thinking budget."""
    if effort is None or (isinstance(effort, str) and effort in NO_THINKING_EFFORTS):
        return None
    if not isinstance(effort, str) or effort not in EFFORT_BUDGETS:  # a list or dict is unhashable: check first
        raise InvalidRequest(f"Invalid '{param}': {effort!r}.", param=param)
    return ThinkingConfig(type="enabled", budget_tokens=EFFORT_BUDGETS[effort], effort=effort)


def response_format(value, param: str, spec_key: str | None) -> ResponseFormat | None:
    """The structured-output format: Chat's `response_format` keeps a json_schema's name, schema and strict under
    `json_schema` (spec_key); Responses' `text.format` has them at the top (spec_key None) and needs the schema."""
    kind = value.get("type") if isinstance(value, dict) else None
    if value is None or kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(type="json_object")
    if kind != "json_schema":
        raise InvalidRequest(f"Invalid '{param}': expected text, json_object or json_schema.", param=param)
    spec = (value.get(spec_key) or {}) if spec_key else value
    if not isinstance(spec, dict):
        raise InvalidRequest(f"Invalid '{param}.{spec_key}': expected an object.", param=f"{param}.{spec_key}")
    if spec_key is None and not isinstance(spec.get("schema"), dict):
        raise InvalidRequest(f"{param} json_schema needs a schema object.", param=f"{param}.schema")
    return ResponseFormat(type="json_schema", schema=spec.get("schema"), name=spec.get("name"), strict=spec.get("strict"))


def _user(body: dict) -> str | None:
    user = body.get("user") or body.get("safety_identifier")
    return user if isinstance(user, str) else None
