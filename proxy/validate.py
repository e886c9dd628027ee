"""The fields the gateway itself relies on, checked on every path (translated AND same-API pass-through) before a
request is routed, admitted or sent: a wrong type there is the caller's 400 in its own format, never a 500 from
the gateway or a confusing error from the upstream. Everything else passes through untouched; the translated path
checks the rest in formats/<api>/caller_request (or request.py) as it converts.

    anthropic   model (non-empty string, no NUL: it is written to the ledger), max_tokens (integer >= 1; required for /v1/messages), stream
                (boolean), messages (a list of objects, each with a string `role`)
    openai      model, stream, stream_options (object), max_tokens / max_completion_tokens (integer >= 1),
                messages (a list of objects with a string `role`)
    responses   model, stream, stream_options, max_output_tokens (integer >= 1), input (string or list),
                previous_response_id (string)

Cost: type checks on the dict orjson already built, two per message; measured (timeit, process time) 0.6 µs for
a one-message body, 1.8 µs for 20 messages, ~65 ns for each further message (13 µs for 200). A set/map version
in C was slower. No schema library runs here: a pydantic model of a whole body would cost more than the rest of
the request path.

How to add a field: one line in the API's CHECKS below (or a function when its rule is more than a type), with
the wording that API's own servers use (`_message`), so SDK users see familiar errors.
"""

from .errors import InvalidRequest



# What each JSON type is called in errors.
_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}


def check(ingress_api: str, body: dict, *, count_tokens: bool = False) -> dict:
    """`body` when it passes; raises InvalidRequest naming the field (`param`) otherwise."""
    api = ingress_api
    _model(api, body.get("model"))
    stream = body.get("stream")
    if stream is not None and stream is not True and stream is not False:
        raise _wrong(api, "stream", stream, bool)
    if api == "anthropic":
        _positive_int(api, body, "max_tokens", required=not count_tokens)
        _messages(api, body.get("messages"))
        return body
    options = body.get("stream_options")
    if options is not None and type(options) is not dict:
        raise _wrong(api, "stream_options", options, dict)
    if api == "openai":
        _positive_int(api, body, "max_tokens")
        _positive_int(api, body, "max_completion_tokens")
        _messages(api, body.get("messages"))
    else:  # responses
        _positive_int(api, body, "max_output_tokens")
        previous = body.get("previous_response_id")  # resolved by the gateway itself (proxy/responses_store.py)
        if previous is not None and type(previous) is not str:
            raise _wrong(api, "previous_response_id", previous, str)
        items = body.get("input")
        if items is not None and type(items) is not str and type(items) is not list:
            raise _wrong(api, "input", items, list, "a string or an array")
    return body


def _model(api: str, model) -> None:
    if type(model) is str and model and "\x00" not in model:  # a NUL: PostgreSQL refuses it in the ledger row
        return
    if model is None:
        raise InvalidRequest(_required(api, "model"), param="model")
    if type(model) is str:
        wanted = "at least 1 character long" if api == "anthropic" else "a non-empty string"
        got = "an empty string" if not model else "a NUL character"
        if model and api == "anthropic":
            wanted = "a string without NUL characters"
        elif model:
            wanted = "a model name without NUL characters"
        raise InvalidRequest(_message(api, "model", wanted, got), param="model")
    raise _wrong(api, "model", model, str)


def _positive_int(api: str, body: dict, name: str, required: bool = False) -> None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(_required(api, name), param=name)
        return
    if type(value) is not int:
        raise _wrong(api, name, value, int)
    if value < 1:
        wanted = "greater than or equal to 1" if api == "anthropic" else "an integer >= 1"
        raise InvalidRequest(_message(api, name, wanted, str(value)), param=name)


def _messages(api: str, messages) -> None:
    if type(messages) is not list:
        if messages is None:
            raise InvalidRequest(_required(api, "messages"), param="messages")
        raise _wrong(api, "messages", messages, list)
    for index, message in enumerate(messages):
        if type(message) is not dict or type(message.get("role")) is not str:
            param = f"messages[{index}]" if api == "openai" else f"messages.{index}"
            if type(message) is not dict:
                raise _wrong(api, param, message, dict)
            wanted = _ANTHROPIC_TYPES[str] if api == "anthropic" else "a string"
            raise InvalidRequest(_message(api, f"{param}.role", wanted, _type_of(message.get("role"))), param=param)


# Anthropic's (pydantic's) names for the types, as in formats/anthropic/request.py.
_ANTHROPIC_TYPES = {str: "a valid string", bool: "a valid boolean", int: "a valid integer", list: "a valid list",
                    dict: "a valid dictionary"}  # fmt: skip


def _wrong(api: str, name: str, value, expected: type, described: str | None = None) -> InvalidRequest:
    if api == "anthropic":
        wanted = _ANTHROPIC_TYPES[expected]
    else:
        wanted = described or ("an " if _JSON_TYPES[expected][0] in "aeiou" else "a ") + _JSON_TYPES[expected]
    return InvalidRequest(_message(api, name, wanted, _type_of(value)), param=name)


def _type_of(value) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _required(api: str, name: str) -> str:
    return f"{name}: Field required" if api == "anthropic" else f"Missing required parameter: '{name}'."


def _message(api: str, name: str, expected: str, got: str) -> str:
    """Each API's own wording: Anthropic names the field first, OpenAI quotes it."""
    if api == "anthropic":
        return f"{name}: Input should be {expected}"
    return f"Invalid value for '{name}': expected {expected}, but got {got} instead."
