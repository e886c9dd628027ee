"""Vendor dialects of the two wire formats, each under its own path prefix on the same fake, so one server
plays every preset (tests/e2e/test_providers_*.py). Each dialect is the plain wire module with one thing
changed, the way the real vendor differs:

    /openai/deployments/{name}/chat/completions   Azure OpenAI: needs `?api-version=` and an `api-key` header
                                                  (a bearer token is refused)
    /deepseek/v1/chat/completions                 DeepSeek's reasoner (thinking mode): an assistant turn of
                                                  the history with tool calls must carry its
                                                  `reasoning_content`, else 400
    /index0/v1/chat/completions                   a shim that streams every tool call with `index: 0`, told
                                                  apart only by a new `id`, with text between the calls
    /router/v1/chat/completions                   a router fronting Anthropic models: cache writes reported
                                                  as `prompt_tokens_details.cache_creation_tokens`
    /strict-anthropic/v1/messages                 an Anthropic-format upstream that answers 400 to any
                                                  `anthropic-beta` value outside KNOWN_BETAS

`register(router)` adds the routes; server.create_app calls it before its catch-all.
"""

from __future__ import annotations

import types

import orjson
from aiohttp import web

from . import wire_anthropic, wire_openai
from .script import json_thirds

KNOWN_BETAS = frozenset({"known-beta-2025-01-01", "prompt-caching-2024-07-31"})


def _variant(base, **overrides):
    """The wire module `base` with some functions replaced (server._generate only calls module attributes)."""
    module = types.SimpleNamespace(**{k: getattr(base, k) for k in dir(base) if not k.startswith("__")})
    for name, value in overrides.items():
        setattr(module, name, value)
    return module


# --- Azure -------------------------------------------------------------------------------------------------

AZURE = _variant(wire_openai, auth_ok=lambda headers, key: not key or (
    headers.get("api-key") == key and "authorization" not in headers))


async def azure_chat(request: web.Request) -> web.StreamResponse:
    from .server import _error, _generate

    if not request.query.get("api-version"):
        return _error(wire_openai, 404, "req_fake_azure", "Resource not found (api-version missing)")
    return await _generate(request, AZURE, False)


# --- DeepSeek ----------------------------------------------------------------------------------------------


def _deepseek_validate(body) -> str | None:
    problem = wire_openai.validate(body)
    if problem:
        return problem
    for i, message in enumerate(body["messages"]):
        if (isinstance(message, dict) and message.get("role") == "assistant" and message.get("tool_calls")
                and not message.get("reasoning_content")):
            return f"messages[{i}]: the reasoning_content of an assistant message must be passed back"
    return None


DEEPSEEK = _variant(wire_openai, validate=_deepseek_validate)


async def deepseek_chat(request: web.Request) -> web.StreamResponse:
    from .server import _generate

    return await _generate(request, DEEPSEEK, False)


# --- every tool call at index 0 ----------------------------------------------------------------------------


def _index0_stream(p, ctx) -> tuple[list[bytes], int]:
    events, cut = wire_openai.render_stream(p, ctx)
    if not p.tools:
        return events, cut
    keep = [e for e in events if b'"tool_calls":[' not in e]  # rebuilt below, sequentially, all at index 0
    finish_at = next(i for i, e in enumerate(keep) if b'"finish_reason":"' in e)
    head = orjson.dumps({"id": ctx.msg_id, "object": "chat.completion.chunk", "created": wire_openai.CREATED,
                         "model": ctx.model})[:-1]

    def chunk(delta: dict) -> bytes:
        return b"data: " + head + b',"choices":[' + orjson.dumps({"index": 0, "delta": delta}) + b"]}\n\n"

    calls = []
    for i, (name, args) in enumerate(p.tools):
        if i:
            calls.append(chunk({"content": f" (then call {i + 1}) "}))
        calls.append(chunk({"tool_calls": [{"index": 0, "id": f"call_fake_{ctx.first_tool_n + i}", "type": "function",
                                            "function": {"name": name, "arguments": ""}}]}))
        for piece in json_thirds(orjson.dumps(args).decode()):
            calls.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    return keep[:finish_at] + calls + keep[finish_at:], min(cut, finish_at)


INDEX0 = _variant(wire_openai, render_stream=_index0_stream)


async def index0_chat(request: web.Request) -> web.StreamResponse:
    from .server import _generate

    return await _generate(request, INDEX0, False)


# --- a router's cache-write usage ----------------------------------------------------------------------------


def _router_usage(body: dict) -> dict:
    details = body.get("prompt_tokens_details") or {}
    if "cache_write_tokens" in details:
        details["cache_creation_tokens"] = details.pop("cache_write_tokens")
    return body


def _router_render(p, ctx) -> bytes:
    body = orjson.loads(wire_openai.render(p, ctx))
    _router_usage(body["usage"])
    return orjson.dumps(body)


def _router_stream(p, ctx) -> tuple[list[bytes], int]:
    events, cut = wire_openai.render_stream(p, ctx)
    return [e.replace(b'"cache_write_tokens"', b'"cache_creation_tokens"') for e in events], cut


ROUTER = _variant(wire_openai, render=_router_render, render_stream=_router_stream)


async def router_chat(request: web.Request) -> web.StreamResponse:
    from .server import _generate

    return await _generate(request, ROUTER, False)


# --- an Anthropic-format upstream strict about betas ---------------------------------------------------------


async def strict_anthropic_messages(request: web.Request) -> web.StreamResponse:
    from .server import _error, _generate

    betas = [b.strip() for b in request.headers.get("anthropic-beta", "").split(",") if b.strip()]
    unknown = [b for b in betas if b not in KNOWN_BETAS]
    if unknown:
        await request.read()
        return _error(wire_anthropic, 400, "req_fake_beta", f"Unexpected value(s) `{', '.join(unknown)}` for the "
                      "`anthropic-beta` header")  # fmt: skip
    return await _generate(request, wire_anthropic, True)


def register(router: web.UrlDispatcher) -> None:
    router.add_post("/openai/deployments/{deployment}/chat/completions", azure_chat)
    router.add_post("/deepseek/v1/chat/completions", deepseek_chat)
    router.add_post("/index0/v1/chat/completions", index0_chat)
    router.add_post("/router/v1/chat/completions", router_chat)
    router.add_post("/strict-anthropic/v1/messages", strict_anthropic_messages)
