"""HTTP endpoints: each hands the request to the module that serves it. Nothing here knows a wire format."""

from django.http import HttpRequest, JsonResponse
from ninja import Router

from . import catalog, pipeline

router = Router()


@router.post("/v1/messages", include_in_schema=True, summary="Anthropic Messages (stream or not)")
async def messages(request: HttpRequest):
    return await pipeline.handle_chat(request, "anthropic")


@router.post("/v1/messages/count_tokens", summary="Anthropic token counting")
async def count_tokens(request: HttpRequest):
    return await catalog.count_tokens(request)


@router.post("/v1/chat/completions", summary="OpenAI Chat Completions (stream or not)")
async def chat_completions(request: HttpRequest):
    return await pipeline.handle_chat(request, "openai")


@router.post("/chat/completions", include_in_schema=False)
async def chat_completions_without_v1(request: HttpRequest):
    return await pipeline.handle_chat(request, "openai")


@router.get("/v1/models", summary="Models this key may use (Anthropic or OpenAI shape)")
async def models(request: HttpRequest):
    return await catalog.list_models(request)


@router.get("/models", include_in_schema=False)
async def models_without_v1(request: HttpRequest):
    return await catalog.list_models(request)


@router.get("/v1/models/{path:model_id}", summary="One model")
async def model(request: HttpRequest, model_id: str):
    return await catalog.list_models(request, model_id)


@router.get("/models/{path:model_id}", include_in_schema=False)
async def model_without_v1(request: HttpRequest, model_id: str):
    return await catalog.list_models(request, model_id)


@router.post("/api/event_logging/batch", include_in_schema=False)
async def claude_code_telemetry(request: HttpRequest):
    # Claude Code's optional telemetry; accepting it keeps its logs quiet. Nothing is stored.
    return JsonResponse({})


def install_error_handlers(api) -> None:
    """Anything that escapes an endpoint (a bug) still answers in JSON, without a traceback."""

    @api.exception_handler(Exception)
    def unexpected(request, exc):
        import logging

        logging.getLogger("proxy").exception("unhandled error on %s", request.path)
        return JsonResponse({"error": {"message": "internal gateway error", "type": "api_error"}}, status=500)
