"""OpenAI's Responses API (POST /v1/responses): OpenAI itself, or a server that offers it. Base URL with /v1 and
a bearer key, exactly as for Chat Completions; only the path and the wire format differ. A Responses caller's
request goes through unchanged (formats.responses.passthrough_request: hosted tools included, R-4); callers of
the other two APIs are translated to it (formats.responses.render_request)."""

from .openai import OpenAIUpstream

PATHS = {"chat": "/responses", "models": "/models"}


class OpenAIResponsesUpstream(OpenAIUpstream):
    api = "responses"
    paths = PATHS
    batch_endpoint = "/v1/responses"
