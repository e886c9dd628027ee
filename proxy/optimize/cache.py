"""The exact response cache: the same request from the same project to the same model alias gets the stored
answer, without an upstream call.

Key: project + ingress API + model alias + the request body without what does not change the answer (the
`stream` flag, stream options, client metadata and user ids, Claude Code's per-request billing line). Only
deterministic requests (temperature 0, or top_k 1) are cached unless the project opts in to caching any request.
An entry is the complete answer in the caller's format plus what it cost; a streamed answer is stored complete
(decoded by the caller format's own StreamDecoder) and a hit for a streaming caller is re-encoded by its
StreamEncoder, so a cached stream has the same event grammar as a live one.

Responses callers (a format with `replay`, proxy/formats/responses/replay.py): the entry is the Response object
as the caller got it (a stream's from its response.completed / response.incomplete event), because its items
(OpenAI's encrypted reasoning, the gateway's sealed thinking, custom and hosted tool calls) do not survive the
canonical model; a hit is that object under a new response id, whole or replayed as the Responses SSE grammar.
A request with `previous_response_id` is never cached: its answer continues a stored response (state outside
the body, which may be deleted or expire) and echoes that id. Codex's per-turn `client_metadata` is not keyed.

Storage: Redis (`gh:rcache:<digest>`, SET EX ttl) when REDIS_URL is set, else an in-process LRU with a TTL and
a size cap (MAX_ENTRIES, 2000; an answer over MAX_ENTRY_BYTES, 1 MiB, is not stored in either; both are fixed
here, not settings). A Redis error is a miss, never a failed request.
"""

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from contextlib import aclosing
from decimal import Decimal
from fnmatch import fnmatchcase

import orjson
from django.conf import settings

from usage import pricing

from ..formats import sse

from ..canonical import (BlockDelta, BlockStart, BlockStop, ChatResponse, MessageDelta, MessageStart, MessageStop,
                         RedactedThinking, StreamError, Text, Thinking, ToolUse, Usage)  # fmt: skip

log = logging.getLogger(__name__)

PREFIX = "gh:rcache:"
IGNORED = frozenset({"stream", "stream_options", "metadata", "user", "store", "safety_identifier", "prompt_cache_key",
                     "client_metadata"})
TERMINAL = ("response.completed", "response.incomplete")  # a Responses stream's complete answer
BILLING_LINE = "x-anthropic-billing-header:"
MAX_ENTRIES = 2000
MAX_ENTRY_BYTES = 1 << 20
_tasks: set = set()


def cache_key(project_id: int, ingress_api: str, alias: str, body: dict, any_request: bool) -> str | None:
    """The entry's key, or None when this request may not be cached."""
    if not any_request and not _deterministic(body) or body.get("previous_response_id") is not None:
        return None
    normal = {k: body[k] for k in sorted(body) if k not in IGNORED}  # top-level order only: a deep sort costs 5x
    system = normal.get("system")
    if isinstance(system, list) and system and isinstance(system[0], dict):
        if str(system[0].get("text", "")).startswith(BILLING_LINE):
            normal["system"] = system[1:]
    digest = hashlib.sha256(orjson.dumps(normal)).hexdigest()  # measured: half of blake2b's time on 76 KB
    return f"{PREFIX}{project_id}:{ingress_api}:{alias}:{digest}"


def _deterministic(body: dict) -> bool:
    return body.get("temperature") == 0 or body.get("top_k") == 1


def ttl(opt, route) -> int:
    """Seconds this request's answer may be kept (0: not cached): the project turns the cache on, for the aliases
    it lists (none: all); a route may keep its answers longer or shorter, or never (its own TTL, 0)."""
    models = opt.response_cache_models
    if not opt.response_cache_ttl or (models and not any(fnmatchcase(route.alias, p) for p in models)):
        return 0
    return opt.response_cache_ttl if route.cache_ttl is None else route.cache_ttl


# --- storage -----------------------------------------------------------------------------------------------


class LocalStore:
    """In-process LRU: at most MAX_ENTRIES entries, each with its own expiry."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        item = self.entries.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return item[1]

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self.entries[key] = (time.monotonic() + ttl, value)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


class RedisStore:
    def __init__(self, url: str):
        import redis.asyncio as aioredis

        self.client = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    async def get(self, key: str) -> bytes | None:
        try:
            return await self.client.get(key)
        except Exception as exc:  # a cache outage is a miss
            log.warning("response cache read failed: %s", type(exc).__name__)
            return None

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        try:
            await self.client.set(key, value, ex=ttl)
        except Exception as exc:
            log.warning("response cache write failed: %s", type(exc).__name__)


_store = None
_store_loop = None


def store():
    """The process's store; a Redis connection belongs to one event loop (a batch job runs its own)."""
    global _store, _store_loop
    if settings.REDIS_URL:
        loop = asyncio.get_running_loop()
        if _store is None or _store_loop is not loop:
            _store, _store_loop = RedisStore(settings.REDIS_URL), loop
    elif _store is None:
        _store = LocalStore()
    return _store


def reset() -> None:
    """Forget the store (tests; a new event loop needs a new Redis connection)."""
    global _store
    _store = None


# --- a hit -------------------------------------------------------------------------------------------------


async def lookup(key: str, call, ingress, body: dict):
    """(content, chunks) of the stored answer in the caller's format, the call recorded as a hit; or None."""
    raw = await store().get(key)
    if raw is None:
        return None
    entry = orjson.loads(raw)
    call.remote_model, call.provider = entry["m"], entry["p"]
    call.saved_usd, call.tokens_saved = Decimal(entry["c"]), entry["t"]
    content = entry["b"].encode()
    call.first_byte()
    call.finish(status=200, outcome="cache_hit")
    replay = getattr(ingress, "replay", None)
    if replay is not None:  # the format's own object, given back by its own replay (see top)
        response = replay.answer(orjson.loads(content), body)
        return (orjson.dumps(response), None) if not call.stream else (None, _once(replay.events(response)))
    if not call.stream:
        return content, None
    chat = ingress.parse_request(body)
    return None, _replay(ingress.parse_response(orjson.loads(content), chat), chat, ingress)


async def _once(chunk: bytes):
    yield chunk


async def _replay(resp: ChatResponse, chat, ingress):
    encoder = ingress.StreamEncoder(chat)
    for event in events_of(resp):
        out = encoder.encode(event)
        if out:
            yield out


def events_of(resp: ChatResponse):
    """A complete answer as the canonical stream a live upstream would have produced."""
    start_usage = Usage(resp.usage.input_tokens, 0, resp.usage.cache_read_tokens, resp.usage.cache_write_tokens)
    yield MessageStart(resp.id, resp.model, start_usage)
    known = (Text, Thinking, ToolUse, RedactedThinking)
    for i, block in enumerate([b for b in resp.content if isinstance(b, known)]):  # indices stay contiguous
        if isinstance(block, Text):
            yield BlockStart(i, Text(""))
            yield BlockDelta(i, "text", block.text)
        elif isinstance(block, Thinking):
            yield BlockStart(i, Thinking(""))
            yield BlockDelta(i, "thinking", block.thinking)
            if block.signature:
                yield BlockDelta(i, "signature", block.signature)
        elif isinstance(block, ToolUse):
            yield BlockStart(i, ToolUse(block.id, block.name, {}))
            yield BlockDelta(i, "input_json", orjson.dumps(block.input).decode())
        else:
            yield BlockStart(i, block)
        yield BlockStop(i)
    yield MessageDelta(resp.stop_reason, resp.stop_sequence, resp.usage)
    yield MessageStop()


# --- a miss: keep the answer -------------------------------------------------------------------------------


def keep(key: str, ttl: int, content: bytes, call) -> None:
    """Store a complete answer (off the response path: the write runs as a task)."""
    if not call.succeeded or len(content) > MAX_ENTRY_BYTES:
        return
    usage = call.usage
    cost = pricing.usage_cost(usage, call.price)
    tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    entry = {"b": content.decode(), "c": str(cost), "t": tokens, "m": call.remote_model, "p": call.provider}
    task = asyncio.ensure_future(store().set(key, orjson.dumps(entry), ttl))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def keep_stream(chunks, key: str, ttl: int, call, ingress, body: dict):
    """Pass the caller's stream through unchanged while reading a copy; store the answer once it ended well."""
    if getattr(ingress, "replay", None) is not None:
        return _keep_object(chunks, key, ttl, call)
    return _keep_decoded(chunks, key, ttl, call, ingress, body)


async def _keep_object(chunks, key: str, ttl: int, call):
    """Responses: the terminal event's Response object is the whole answer, exactly as the caller got it."""
    parser, final = sse.SSEParser(), None
    async with aclosing(chunks):
        async for chunk in chunks:
            for event in parser.feed(chunk):
                final = terminal_response(event) or final
            yield chunk
    if final is not None and call.succeeded:
        keep(key, ttl, orjson.dumps(final), call)


def terminal_response(event) -> dict | None:
    named = event.event in TERMINAL
    if not named and (event.event is not None or not any(t.encode() in event.data for t in TERMINAL)):
        return None  # only the terminal event is decoded (a data-only stream: when it could be one)
    try:
        payload = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    response = payload.get("response") if isinstance(payload, dict) and payload.get("type") in TERMINAL else None
    return response if isinstance(response, dict) else None


async def _keep_decoded(chunks, key: str, ttl: int, call, ingress, body: dict):
    """Other formats: decoded by the format's StreamDecoder, stored rendered as its complete answer."""
    chat = ingress.parse_request(body)
    decoder, events = ingress.StreamDecoder(chat), []
    async with aclosing(chunks):
        async for chunk in chunks:
            events += decoder.feed(chunk)
            yield chunk
    events += decoder.finish()
    if call.succeeded and not any(isinstance(e, StreamError) for e in events):
        resp = assemble(events)
        if resp is not None:
            keep(key, ttl, orjson.dumps(ingress.render_response(resp, chat)), call)


def assemble(events) -> ChatResponse | None:
    """Canonical stream events -> the complete answer (None for a stream that never started or stopped)."""
    start, delta, blocks, parts = None, None, {}, {}
    for event in events:
        if isinstance(event, MessageStart):
            start = event
        elif isinstance(event, BlockStart):
            blocks[event.index], parts[event.index] = event.block, []
        elif isinstance(event, BlockDelta) and event.index in blocks:
            parts[event.index].append((event.kind, event.value))
        elif isinstance(event, MessageDelta):
            delta = event
    if start is None or delta is None:
        return None
    content = [_finished(blocks[i], parts[i]) for i in sorted(blocks)]
    return ChatResponse(start.id, start.model, content, delta.stop_reason, delta.stop_sequence, delta.usage)


def _finished(block, parts):
    joined = {kind: "".join(v for k, v in parts if k == kind) for kind in {k for k, _ in parts}}
    if isinstance(block, Text):
        return Text(block.text + joined.get("text", ""))
    if isinstance(block, Thinking):
        return Thinking(block.thinking + joined.get("thinking", ""), block.signature + joined.get("signature", ""))
    if isinstance(block, ToolUse):
        raw = joined.get("input_json", "")
        return ToolUse(block.id, block.name, orjson.loads(raw) if raw else block.input)
    return block
