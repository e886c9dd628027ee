"""A caller's `POST /v1/responses` body -> ResponsesRequest (a ChatRequest plus what the response echoes back).

Parameters map as Chat Completions' do (docs/translation.md §5.3): `instructions` -> system (R-7), `max_output_tokens`
-> max_tokens, `reasoning.effort` -> thinking through the same budget table (R-6), `text.format` -> response
format, `parallel_tool_calls: false` -> disable_parallel. Tools: `function` tools as they are; `custom`
(freeform) tools become a function with one required string parameter (R-3); the function and custom tools of
a `namespace` tool (Codex groups its client-side tools so, all of them in its "lite" format) are offered one by
one, under their own names (`<namespace>__<name>` when two would clash), and their calls go back named and
namespaced as the caller defined them; hosted tools are dropped, since a translated upstream cannot run them
(R-4; `dropped_tools` names them for the caller's header); any other type is a 400 naming it. What cannot be honoured at all (background mode, stored prompts, conversations, logprobs)
is a 400 too (P-13).

`previous_response_id` is resolved before parsing: the core looks the stored items up and calls
`expand_previous`; parse_request only echoes the id.
"""

from dataclasses import dataclass, field

from proxy.canonical import (
    ChatRequest,
    Text,
    Tool,
    ToolChoice,
)
from proxy.errors import InvalidRequest

from ..openai.caller_request import model_of, number, response_format, thinking_from_effort, token_count
from .items_in import CUSTOM_INPUT, parse_input

HOSTED_TOOL_TYPES = frozenset(
    {
        "web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11",
        "file_search", "code_interpreter", "image_generation", "computer", "computer_use_preview", "local_shell",
        "shell", "apply_patch", "mcp", "tool_search", "programmatic_tool_calling",
    }
)  # fmt: skip
UNSUPPORTED = {  # parameter -> why it is a 400 rather than ignored
    "background": "Background responses are not supported by this gateway.",
    "conversation": "Conversations are not supported by this gateway; use previous_response_id.",
    "prompt": "Stored prompts are not supported by this gateway; send instructions and input.",
}


@dataclass(slots=True)
class ResponsesRequest(ChatRequest):
    """`echo`: the request parameters a Response object shows, with OpenAI's defaults filled in.
    `custom_tools`: names of freeform tools, whose calls go back as custom_tool_call items (R-3).
    `namespaced`: the upstream name of each tool offered from a namespace -> (namespace, its name there)."""

    echo: dict = field(default_factory=dict)
    custom_tools: frozenset = frozenset()
    namespaced: dict = field(default_factory=dict)


def parse_request(body: dict) -> ResponsesRequest:
    model = model_of(body, "Missing required parameter: 'model'.")
    _reject_unsupported(body)
    tool_defs = _offered_tools(body)
    names = _upstream_names(tool_defs)
    tools = [_tool(offer.definition, offer.param, name) for offer, name in zip(tool_defs, names)]
    namespaced = {name: (o.namespace, o.definition["name"]) for o, name in zip(tool_defs, names) if o.namespace}
    reasoning = _object(body, "reasoning")
    text = _object(body, "text")
    return ResponsesRequest(
        model=model,
        messages=parse_input(body.get("input"), {spelled: name for name, spelled in namespaced.items()}),
        system=_instructions(body.get("instructions")),
        max_tokens=token_count(body, "max_output_tokens"),
        stream=_flag(body, "stream", False),
        temperature=number(body, "temperature"),
        top_p=number(body, "top_p"),
        tools=tools,
        tool_choice=_tool_choice(body, tools),
        thinking=thinking_from_effort(reasoning.get("effort"), "reasoning.effort"),  # Chat's table
        response_format=response_format(text.get("format"), "text.format", None),
        user=_string(body, "user") or _string(body, "safety_identifier"),
        echo=_echo(body, _echoed_tools(tool_defs), reasoning, text),
        custom_tools=frozenset(name for o, name in zip(tool_defs, names) if o.definition.get("type") == "custom"),
        namespaced=namespaced,
    )


def expand_previous(body: dict, stored_items: list[dict]) -> dict:
    """A new body whose input is the stored items (a previous response's input and output), then this
    request's own input (R-8). The body itself is not changed; previous_response_id stays for the echo."""
    return {**body, "input": [*stored_items, *input_items(body)]}


def input_items(body: dict) -> list[dict]:
    """The request's input as a list of items (a string input is one user message), e.g. for storage."""
    value = body.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}] if value else []
    return list(value) if isinstance(value, list) else []


def dropped_tools(body: dict) -> list[str]:
    """R-4: the hosted tools a translated upstream will not see, by type (for a response header and the log)."""
    dropped = []
    for offer in _tool_list(body):
        tool = offer.definition
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind in HOSTED_TOOL_TYPES and kind not in dropped:
            dropped.append(kind)
    return dropped


# --- top-level parameters -----------------------------------------------------------------------------------


def _reject_unsupported(body: dict) -> None:
    for name, message in UNSUPPORTED.items():
        if body.get(name):
            raise InvalidRequest(message, param=name)
    if body.get("top_logprobs"):  # P-13
        raise InvalidRequest("logprobs are not supported by this gateway.", param="top_logprobs")
    include = body.get("include")
    if include is not None and not isinstance(include, list):
        raise InvalidRequest("'include' must be an array.", param="include")
    if "message.output_text.logprobs" in (include or []):
        raise InvalidRequest("logprobs are not supported by this gateway.", param="include")


def _object(body: dict, key: str) -> dict:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid '{key}': expected an object.", param=key)
    return value


def _flag(body: dict, key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidRequest(f"Invalid '{key}': expected a boolean.", param=key)
    return value


def _string(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"Invalid '{key}': expected a string.", param=key)
    return value or None


def _instructions(value) -> list[Text]:
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise InvalidRequest("Invalid 'instructions': expected a string.", param="instructions")
    return [Text(value)]


# --- tools ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Offer:
    definition: object  # the tool as the caller defined it
    param: str  # where, for error messages
    namespace: str | None = None  # the namespace it was defined in
    root: object = None  # the top-level definition it came from (itself, or its namespace), for the echo


def _tool_list(body: dict) -> list[_Offer]:
    """Every tool of `tools`, then of the `additional_tools` input items (Codex's "lite" request format carries
    its tools there); a namespace's tools in its place."""
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array.", param="tools")
    listed = [(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    items = body.get("input") if isinstance(body.get("input"), list) else []
    for k, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "additional_tools" and isinstance(item.get("tools"), list):
            listed.extend((tool, f"input[{k}].tools[{j}]") for j, tool in enumerate(item["tools"]))
    offers = []
    for tool, param in listed:
        if isinstance(tool, dict) and tool.get("type") == "namespace":
            namespace, inner = tool.get("name"), tool.get("tools")
            if not isinstance(namespace, str) or not namespace or not isinstance(inner, list):
                raise InvalidRequest("A namespace tool needs a name and a tools array.", param=param)
            offers.extend(_Offer(t, f"{param}.tools[{j}]", namespace, tool) for j, t in enumerate(inner))
        else:
            offers.append(_Offer(tool, param, None, tool))
    return offers


def _offered_tools(body: dict) -> list[_Offer]:
    """Every function and custom tool, namespaced ones included; hosted ones are dropped (R-4)."""
    offered = []
    for offer in _tool_list(body):
        kind = offer.definition.get("type") if isinstance(offer.definition, dict) else None
        kind = kind if isinstance(kind, str) else repr(kind)  # unhashable JSON must not reach the set lookup
        if kind in ("function", "custom"):
            offered.append(offer)
        elif kind not in HOSTED_TOOL_TYPES:
            raise InvalidRequest(
                f"Tools of type {kind!r} are not supported by this gateway; use function or custom tools.",
                param=f"{offer.param}.type",
            )
    return offered


def _upstream_names(offered: list[_Offer]) -> list[str]:
    """The name each tool has upstream: its own, unless a namespaced one's clashes with another tool's."""
    count: dict = {}
    for offer in offered:
        name = offer.definition.get("name")
        count[name] = count.get(name, 0) + 1
    names = []
    for offer in offered:
        name = offer.definition.get("name")
        clash = offer.namespace is not None and isinstance(name, str) and count[name] > 1
        names.append(f"{offer.namespace}__{name}" if clash else name)
    return names


def _echoed_tools(offered: list[_Offer]) -> list[dict]:
    """The tools a Response object shows: the caller's top-level definitions the model saw (a namespace once)."""
    echoed, seen = [], set()
    for offer in offered:
        if id(offer.root) not in seen:
            seen.add(id(offer.root))
            echoed.append(offer.root)
    return echoed


def _tool(tool: dict, param: str, name) -> Tool:
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise InvalidRequest("A tool needs a name.", param=f"{param}.name")
    description = tool.get("description") if isinstance(tool.get("description"), str) else None
    if tool["type"] == "custom":
        return Tool(name=name, input_schema=_custom_schema(tool.get("format")), description=description)
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest("Function parameters must be a JSON schema object.", param=f"{param}.parameters")
    return Tool(
        name=name,
        input_schema=parameters or {"type": "object", "properties": {}},
        description=description,
        strict=tool.get("strict") if isinstance(tool.get("strict"), bool) else None,
    )


def _custom_schema(fmt) -> dict:
    """R-3: a freeform tool takes one string. Its grammar, when it has one, goes into the parameter's
    description: the upstream model cannot be constrained by it, but it can follow it."""
    description = "The tool's input: free text, not JSON."
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        description += f" It must match this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
    return {
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": description}},
        "required": [CUSTOM_INPUT],
        "additionalProperties": False,
    }


def _tool_choice(body: dict, tools: list[Tool]) -> ToolChoice | None:
    if not tools:  # a tool_choice without tools means nothing, and Anthropic rejects it
        return None
    choice = _choice(body.get("tool_choice"), tools)
    if _flag(body, "parallel_tool_calls", True) is False:
        choice = choice or ToolChoice(type="auto")
        choice.disable_parallel = True
    return choice


def _choice(value, tools: list[Tool]) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("none", "auto", "required"):
        return ToolChoice(type="any" if value == "required" else value)
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("function", "custom") and isinstance(value.get("name"), str) and value["name"]:
        if not any(tool.name == value["name"] for tool in tools):
            raise InvalidRequest(f"tool_choice names an unknown tool: {value['name']!r}.", param="tool_choice")
        return ToolChoice(type="tool", name=value["name"])
    if kind == "allowed_tools":
        allowed = {t.get("name") for t in value.get("tools") or [] if isinstance(t, dict)}
        tools[:] = [tool for tool in tools if tool.name in allowed]  # §5.3: filter, then auto / any
        if not tools:
            raise InvalidRequest("allowed_tools names no tool of the request.", param="tool_choice")
        return ToolChoice(type="any" if value.get("mode") == "required" else "auto")
    raise InvalidRequest(
        "Invalid 'tool_choice': expected none, auto, required, a function or custom tool, or allowed_tools.",
        param="tool_choice",
    )


# --- echo ----------------------------------------------------------------------------------------------------


def _echo(body: dict, offered: list[dict], reasoning: dict, text: dict) -> dict:
    """The Response object's request fields, as OpenAI fills them: what was sent, else its defaults. Tools are
    the ones the model was offered (hosted ones were dropped, R-4)."""
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidRequest("Invalid 'metadata': expected an object.", param="metadata")
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": metadata or {},
        "parallel_tool_calls": _flag(body, "parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": _flag(body, "store", True),
        "temperature": body["temperature"] if body.get("temperature") is not None else 1.0,
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [dict(tool) for tool in offered],
        "top_p": body["top_p"] if body.get("top_p") is not None else 1.0,
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
    }
