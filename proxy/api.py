"""HTTP endpoints: adapt the request, call the module that serves it, adapt the result. Nothing here knows a wire
format, and nothing here catches an error:

- every model endpoint carries `auth=GatewayKey()` (proxy/auth.py): the key is checked before the endpoint runs;
- every GatewayError, wherever it is raised (auth included), reaches `gateway_error` below, which renders it in
  the caller's own format (`caller_format`) with the headers the error carries.

To add an endpoint: a function here with `auth=KEY`, calling a module that raises GatewayError on failure.
"""

import logging

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from ninja import Router
from ninja import errors as ninja_errors

from . import catalog, core, errors, formats, ids, openapi, responses_store, validate
from .auth import GatewayKey, credential_from_headers
from .errors import GatewayError, InvalidRequest, NotFound
from .formats import model_list

log = logging.getLogger(__name__)

# Every path this router serves starts with one of these (gateway_site/asgi.py serves them without middleware), and
# so does the Coding Gateway's /chat (gateway_site/coding_gateway.py).
PATH_PREFIXES = ("/v1/", "/chat", "/models", "/responses", "/api/event_logging/", "/bedrock/", "/vertex/")
router = Router()
KEY = GatewayKey()
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE = "text/event-stream; charset=utf-8"


@router.post("/v1/messages", auth=KEY, summary="Anthropic Messages (stream or not)",
             openapi_extra=openapi.body(openapi.ANTHROPIC_MESSAGES))
async def messages(request: HttpRequest):
    return await chat(request, "anthropic")


@router.post("/v1/messages/count_tokens", auth=KEY, summary="Anthropic token counting",
             openapi_extra=openapi.body(openapi.ANTHROPIC_COUNT_TOKENS))
async def count_tokens(request: HttpRequest):
    body = validate.check("anthropic", read_json_body(request), count_tokens=True)
    return JsonResponse(await catalog.count_tokens(request.auth, body, request.headers))


@router.post("/v1/chat/completions", auth=KEY, summary="OpenAI Chat Completions (stream or not)",
             openapi_extra=openapi.body(openapi.OPENAI_CHAT))
async def chat_completions(request: HttpRequest):
    return await chat(request, "openai")


@router.post("/chat/completions", auth=KEY, include_in_schema=False)
async def chat_completions_without_v1(request: HttpRequest):
    return await chat(request, "openai")


@router.post("/v1/responses", auth=KEY, summary="OpenAI Responses (stream or not)",
             openapi_extra=openapi.body(openapi.RESPONSES_CREATE))
async def create_response(request: HttpRequest):
    _check_length(request)
    turn = await responses_store.begin(request.auth, request.body)  # previous_response_id: its items prepended
    result = await core.run(request.auth, "responses", turn.body, client_headers=request.headers)
    return _http_response(await turn.keep(result))  # stored unless `store: false`


@router.post("/responses", auth=KEY, include_in_schema=False)
async def create_response_without_v1(request: HttpRequest):
    return await create_response(request)


@router.post("/v1/responses/input_tokens", auth=KEY, summary="OpenAI Responses input token count",
             openapi_extra=openapi.body(openapi.RESPONSES_INPUT_TOKENS))
async def response_input_tokens(request: HttpRequest):
    _check_length(request)
    return JsonResponse(await responses_store.count_input_tokens(request.auth, request.body, request.headers))


@router.get("/v1/responses/{response_id}", auth=KEY, summary="A stored response")
async def retrieve_response(request: HttpRequest, response_id: str):
    content = await responses_store.retrieve(request.auth, response_id)
    return HttpResponse(content, content_type="application/json")


@router.delete("/v1/responses/{response_id}", auth=KEY, summary="Delete a stored response")
async def delete_response(request: HttpRequest, response_id: str):
    return JsonResponse(await responses_store.delete(request.auth, response_id))


@router.get("/v1/responses/{response_id}/input_items", auth=KEY, summary="A stored response's input items")
async def response_input_items(request: HttpRequest, response_id: str):
    return JsonResponse(await responses_store.list_input_items(request.auth, response_id, request.GET))


@router.get("/v1/models", auth=KEY, summary="Models this key may use (Anthropic or OpenAI shape)")
async def models(request: HttpRequest):
    return JsonResponse(await _list_models(request))


@router.get("/models", auth=KEY, include_in_schema=False)
async def models_without_v1(request: HttpRequest):
    return JsonResponse(await _list_models(request))


async def _list_models(request) -> dict:
    user_agent = request.headers.get("user-agent", "")
    return await catalog.list_models(request.auth, _models_api(request), request.GET, user_agent)


@router.get("/v1/models/{path:model_id}", auth=KEY, summary="One model")
async def model(request: HttpRequest, model_id: str):
    return JsonResponse(await catalog.one_model(request.auth, _models_api(request), model_id))


@router.get("/models/{path:model_id}", auth=KEY, include_in_schema=False)
async def model_without_v1(request: HttpRequest, model_id: str):
    return JsonResponse(await catalog.one_model(request.auth, _models_api(request), model_id))


# --- the Messages API in Bedrock's and Vertex's envelopes (proxy/formats/bedrock, proxy/formats/vertex) ---------


@router.post("/bedrock/model/{path:model_id}/invoke", auth=KEY, summary="Bedrock InvokeModel (Anthropic models)")
async def bedrock_invoke(request: HttpRequest, model_id: str):
    return await enveloped(request, "bedrock", model_id, stream=False)


@router.post("/bedrock/model/{path:model_id}/invoke-with-response-stream", auth=KEY,
             summary="Bedrock InvokeModelWithResponseStream (Anthropic models; AWS event-stream frames)")
async def bedrock_invoke_stream(request: HttpRequest, model_id: str):
    return await enveloped(request, "bedrock", model_id, stream=True)


@router.get("/bedrock/inference-profiles", summary="Bedrock ListInferenceProfiles: the key's Claude models")
async def bedrock_inference_profiles(request: HttpRequest):
    # Claude Code asks with the AWS SDK, which sends no key with CLAUDE_CODE_SKIP_BEDROCK_AUTH=1 (its custom
    # headers go to the Messages calls only): an empty list lets it go on, without an auth failure on every start.
    key = await KEY.authenticate(request) if credential_from_headers(request.headers) else None
    return JsonResponse(await catalog.inference_profiles(key))


@router.post("/vertex/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model_operation}",
             auth=KEY, summary="Vertex AI rawPredict / streamRawPredict (Anthropic models), count-tokens:rawPredict")
async def vertex_predict(request: HttpRequest, project: str, location: str, model_operation: str):
    model_id, _, operation = model_operation.rpartition(":")
    if model_id == "count-tokens" and operation == "rawPredict":
        body = read_json_body(request)  # the model is in the body here
        body, headers = formats.get("vertex").envelope(body, str(body.get("model") or ""), False, request.headers)
        body = validate.check("anthropic", body, count_tokens=True)
        return JsonResponse(await catalog.count_tokens(request.auth, body, headers))
    if operation not in ("rawPredict", "streamRawPredict"):
        raise NotFound(f"No route for POST {request.path}")
    return await enveloped(request, "vertex", model_id, stream=operation == "streamRawPredict")


async def enveloped(request: HttpRequest, ingress_api: str, model_id: str, stream: bool) -> HttpResponse:
    """A Messages request in a cloud envelope: unwrapped by its format, then the same core as /v1/messages."""
    fmt = formats.get(ingress_api)
    body, headers = fmt.envelope(read_json_body(request), model_id, stream, request.headers)
    result = await core.run(request.auth, ingress_api, body, client_headers=headers)
    return _http_response(result, getattr(fmt, "STREAM_MEDIA_TYPE", SSE))


@router.post("/api/event_logging/batch", include_in_schema=False)
async def claude_code_telemetry(request: HttpRequest):
    # Claude Code's optional telemetry; accepting it keeps its logs quiet. Nothing is stored.
    return JsonResponse({})


async def chat(request: HttpRequest, ingress_api: str) -> HttpResponse:
    _check_length(request)
    result = await core.run(request.auth, ingress_api, request.body, client_headers=request.headers)
    return _http_response(result)


def _http_response(result: core.Result, stream_type: str = SSE) -> HttpResponse:
    if result.chunks is not None:
        headers = {**STREAM_HEADERS, **result.headers}
        return StreamingHttpResponse(result.chunks, content_type=stream_type, headers=headers)
    return HttpResponse(result.content, status=result.status, content_type="application/json", headers=result.headers)


def read_json_body(request) -> dict:
    _check_length(request)
    return core.parse_body(request.body)


def _check_length(request) -> None:
    errors.check_length(request.META.get("CONTENT_LENGTH"), request.path_info)


def _models_api(request) -> str:
    return model_list.caller_api(request.headers)


def caller_format(request) -> str:
    return caller_format_of(request.path, request.headers)


def caller_format_of(path: str, headers) -> str:
    """The API the caller speaks, from the path (model lists: from the headers, both SDKs use the same path)."""
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith(("/bedrock/", "/vertex/")):
        return path[1 : path.index("/", 1)]
    if path.startswith(("/v1/responses", "/responses")):
        return "responses"
    if path.startswith(("/v1/models", "/models")):
        return model_list.caller_api(headers)
    return "openai"


def error_response(path: str, headers, err: GatewayError) -> HttpResponse:
    """`err` as the caller's API renders it: its status, its JSON body, its headers and a request id."""
    fmt = formats.get(caller_format_of(path, headers))
    status, content, extra = fmt.render_error(err)
    response = HttpResponse(content, status=status, content_type="application/json")
    for name, value in {**extra, **err.headers}.items():
        response[name] = value
    request_id_header = ids.request_id_header(fmt.NAME)
    if not response.has_header(request_id_header):
        response[request_id_header] = ids.request_id()
    return response


def install_error_handlers(api) -> None:
    """The one error mapping for the whole API."""

    @api.exception_handler(GatewayError)
    def gateway_error(request, err: GatewayError):
        return error_response(request.path, request.headers, err)

    @api.exception_handler(Http404)
    def no_such_thing(request, exc):
        return gateway_error(request, NotFound(f"No route for {request.method} {request.path}"))

    @api.exception_handler(ninja_errors.ValidationError)
    def invalid(request, exc):  # a path or query parameter ninja could not convert
        return gateway_error(request, InvalidRequest(f"invalid request parameters: {exc.errors}"))

    @api.exception_handler(ninja_errors.HttpError)
    def http_error(request, exc):
        kind = {401: "authentication", 403: "permission", 404: "not_found", 429: "rate_limit"}.get(exc.status_code)
        return gateway_error(request, GatewayError(str(exc), kind=kind or "invalid_request", status=exc.status_code))

    @api.exception_handler(Exception)
    def unexpected(request, exc):
        return gateway_error(request, errors.unexpected(exc, request.path))
