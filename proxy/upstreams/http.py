"""One pooled HTTP client per running event loop (an AsyncClient must not cross loops: encode/httpx#2473).

The transport is aiohttp's connection pool behind the httpx API: it costs about a third of the CPU of httpx's own
pool per request (docs/stack-calibration.md). Tests may install another transport with `use_transport`.
"""

import asyncio
import weakref

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = weakref.WeakKeyDictionary()
_transport_factory = None

# Upstream answers uncompressed: a stream is relayed as it arrives (a compressed one would reach the client as
# gzip bytes labelled text/event-stream), and a complete answer is small next to the CPU its decoding costs.
UPSTREAM_HEADERS = {"Accept-Encoding": "identity"}
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30)


def use_transport(factory) -> None:
    """Make every new client use `factory()` as its transport (None restores the default)."""
    global _transport_factory
    _transport_factory = factory
    _clients.clear()


def client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    existing = _clients.get(loop)
    if existing is None:
        transport = _transport_factory() if _transport_factory else AiohttpTransport(limits=LIMITS)
        existing = _clients[loop] = httpx.AsyncClient(
            transport=transport, timeout=None, follow_redirects=False, headers=UPSTREAM_HEADERS
        )
    return existing


def body_chunks(response: httpx.Response):
    """A streamed answer's bytes as the upstream meant them: raw (no copy, no decoder) when not encoded, decoded
    when an upstream compresses although asked not to (gzip, deflate; br/zstd when their packages are present)."""
    encoding = response.headers.get("content-encoding")
    if not encoding or encoding == "identity":
        return response.aiter_raw()
    return response.aiter_bytes()


def timeout(connect: float, read: float) -> httpx.Timeout:
    return httpx.Timeout(read, connect=connect, pool=connect)


async def close_all() -> None:
    """Close the clients of the running loop (at shutdown, so no connection is left half-open)."""
    loop = asyncio.get_running_loop()
    existing = _clients.pop(loop, None)
    if existing is not None:
        await existing.aclose()


def describe(exc: httpx.HTTPError) -> tuple[str, int, str]:
    """(error kind, status, what happened) for a failed upstream call. The aiohttp transport reports a refused
    connection as httpx.ConnectTimeout, so the underlying aiohttp error decides (its __cause__)."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(cause, aiohttp.ServerTimeoutError):
        return "api_error", 502, f"could not connect ({cause.os_error.strerror or type(cause.os_error).__name__})"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", 504, "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "api_error", 502, "could not connect"
    return "api_error", 502, f"connection failed: {type(exc).__name__}"
