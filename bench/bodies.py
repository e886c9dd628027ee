"""Request bodies for the benchmark, in the three wire formats, and the HTTP/1.1 request bytes built from them.

Two sizes:
- small: a short chat (~0.4 KB), the same conversation in Anthropic, OpenAI and Responses shape;
- large: a real Claude Code first turn (tests/fixtures/claude-code/messages-first-turn.json, ~76 KB,
  24 tools) for the Anthropic side, and an equivalent OpenAI body derived from it (same system text, same
  messages, tools as function tools, same max tokens); for the Responses side a real Codex CLI first turn
  (tests/fixtures/codex/requests/shell-1.json, ~40 KB, 10 tools, `store: false` as Codex sends it).

"Direct" bodies are what the gateway itself would send upstream (remote model name; for OpenAI streams
stream_options.include_usage, which the gateway adds for metering).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(os.environ.get(
    "BENCH_CLAUDE_CODE_FIXTURE", ROOT / "tests" / "fixtures" / "claude-code" / "messages-first-turn.json"))
CODEX_FIXTURE = ROOT / "tests" / "fixtures" / "codex" / "requests" / "shell-1.json"

ALIAS = {"anthropic": "bench-anthropic", "openai": "bench-openai"}  # gateway aliases, by upstream API
REMOTE = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4o-mini"}  # the fake's model ids
FAKE_KEY = "sk-fake"
ANTHROPIC_VERSION = "2023-06-01"

# The four paths: ingress API -> upstream API.
PATHS = {
    "a2o": ("anthropic", "openai"),
    "a2a": ("anthropic", "anthropic"),
    "o2a": ("openai", "anthropic"),
    "o2o": ("openai", "openai"),
    "r2o": ("responses", "openai"),
}
PATH_LABELS = {
    "a2o": "Anthropic -> OpenAI-compat",
    "a2a": "Anthropic -> Anthropic",
    "o2a": "OpenAI -> Anthropic",
    "o2o": "OpenAI -> OpenAI-compat",
    "r2o": "Responses -> OpenAI-compat",
}
URL_PATH = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions", "responses": "/v1/responses"}

SYSTEM = "You are a concise assistant. Answer in one or two sentences."
USER = "Write one short sentence about the sea, something a child would enjoy hearing before bed."

# A response counts as complete only if it carries this (streams: the terminal event, so a stream that broke
# mid-way with a 200 status is an error too).
MARKERS = {
    ("anthropic", False): b'"stop_reason"',
    ("anthropic", True): b"message_stop",
    ("openai", False): b'"finish_reason"',
    ("openai", True): b"[DONE]",
    ("responses", False): b'"status":"completed"',
    ("responses", True): b"event: response.completed",
}


def _fixture() -> dict:
    path = FIXTURE
    if not path.exists():
        raise SystemExit(f"bench: Claude Code fixture not found at {FIXTURE} (set BENCH_CLAUDE_CODE_FIXTURE)")
    return orjson.loads(path.read_bytes())


def anthropic_small(model: str, stream: bool) -> dict:
    return {"model": model, "max_tokens": 256, "system": SYSTEM,
            "messages": [{"role": "user", "content": USER}], "stream": stream}


def openai_small(model: str, stream: bool, include_usage: bool) -> dict:
    body = {"model": model, "max_tokens": 256,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
            "stream": stream}
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def responses_small(model: str, stream: bool) -> dict:
    return {"model": model, "instructions": SYSTEM, "input": USER, "max_output_tokens": 256, "stream": stream}


_large_cache: dict = {}


def responses_large(model: str, stream: bool) -> dict:
    """The captured Codex CLI request with only model and stream changed."""
    if "codex" not in _large_cache:
        if not CODEX_FIXTURE.exists():
            raise SystemExit(f"bench: Codex fixture not found at {CODEX_FIXTURE}")
        _large_cache["codex"] = orjson.loads(CODEX_FIXTURE.read_bytes())["body"]
    return {**_large_cache["codex"], "model": model, "stream": stream}


def anthropic_large(model: str, stream: bool) -> tuple[dict, dict]:
    """(body, extra headers) — the captured Claude Code request with only model and stream changed."""
    if "fixture" not in _large_cache:
        _large_cache["fixture"] = _fixture()
    fx = _large_cache["fixture"]
    body = dict(fx["body"])
    body["model"] = model
    body["stream"] = stream
    h = fx.get("headers", {})
    headers = {k: h[k] for k in ("anthropic-beta", "user-agent", "x-app") if k in h}
    return body, headers


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


def openai_from_anthropic(a: dict, model: str, stream: bool, include_usage: bool) -> dict:
    """An OpenAI Chat Completions body equivalent to the Anthropic one (text content and tools)."""
    messages = []
    system = a.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system) if isinstance(system, list) else system})
    for m in a["messages"]:
        c = m["content"]
        if isinstance(c, list):
            parts = [{"type": "text", "text": b["text"]} for b in c if b.get("type") == "text"]
            messages.append({"role": m["role"], "content": parts})
        else:
            messages.append({"role": m["role"], "content": c})
    body = {
        "model": model,
        "messages": messages,
        "tools": [{"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                                    "parameters": t["input_schema"]}} for t in a.get("tools", [])],
        "max_completion_tokens": a.get("max_tokens", 4096),
        "stream": stream,
    }
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def build_body(api: str, size: str, model: str, stream: bool, *, direct: bool) -> tuple[dict, dict]:
    """(body, extra headers) for `api` ("anthropic"|"openai"|"responses"). direct=True: as the gateway would send
    it."""
    if api == "responses":
        return (responses_small if size == "small" else responses_large)(model, stream), {}
    if size == "small":
        if api == "anthropic":
            return anthropic_small(model, stream), {}
        return openai_small(model, stream, include_usage=direct), {}
    a, headers = anthropic_large(model, stream)
    if api == "anthropic":
        return a, headers
    return openai_from_anthropic(copy.deepcopy(a), model, stream, include_usage=direct), {}


def http_request(host: str, port: int, api: str, body: dict, *, key: str, extra_headers: dict | None = None,
                 query: str = "") -> bytes:
    """One complete HTTP/1.1 keep-alive POST, as bytes (sent as is for every request of a point)."""
    payload = orjson.dumps(body)
    lines = [f"POST {URL_PATH[api]}{query} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(payload)}", "Accept: */*", "Connection: keep-alive"]
    if api == "anthropic":
        lines += [f"x-api-key: {key}", f"anthropic-version: {ANTHROPIC_VERSION}"]
    else:
        lines += [f"Authorization: Bearer {key}"]
    for k, v in (extra_headers or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def request_for(path: str, size: str, stream: bool, *, direct: bool, host: str, port: int, key: str) -> tuple[bytes, bytes]:
    """(request bytes, completion marker) for one point. Direct = the upstream's own format straight to the fake."""
    ingress, upstream = PATHS[path]
    api = upstream if direct else ingress
    model = REMOTE[upstream] if direct else ALIAS[upstream]
    body, headers = build_body(api, size, model, stream, direct=direct)
    query = "?beta=true" if (api == "anthropic" and size == "large") else ""  # as Claude Code sends it
    return http_request(host, port, api, body, key=key, extra_headers=headers, query=query), MARKERS[(api, stream)]
