"""What the Responses API asks of the gateway beyond `core.run`: stored responses (R-8), their endpoints, and
token counting. proxy/api.py calls it around the core; the core itself does not know it exists.

    turn = await begin(key, raw)          before core.run: parse, and when the body names a
                                          previous_response_id, prepend that response's items to `input`
                                          (unknown to the key's project -> 400, param previous_response_id)
    result = await turn.keep(result)      after: store the Response object and the input it answered (a stream's
                                          from its response.completed / response.incomplete event, before that
                                          event reaches the client), unless the body said `store: false`

A WebSocket connection (proxy/ws.py) passes `recent`, its own dict of the responses it answered: they are kept
there too, `store: false` ones included, and a previous_response_id is looked up there first (the Responses
WebSocket mode chains within a connection without storing; Codex sends `store: false` and continues each turn
from the last response's id). At most RECENT_PER_CONNECTION are kept, the oldest dropped first.
    retrieve / delete / list_input_items  GET and DELETE /v1/responses/{id}, GET .../input_items
    count_input_tokens                    POST /v1/responses/input_tokens

A stored response belongs to its key's project: every lookup filters on it, so another project's id is a 404
(a 400 as a previous_response_id), exactly like an id that never existed. Rows live for
GATEWAY_RESPONSES_RETENTION_DAYS (default 30; 0 keeps them forever): older ones are invisible at once and
deleted by a purge each process runs at most once an hour after storing (and by `manage.py purge_responses`).
Failed responses are not stored (a follow-up would continue from an answer the client never got).

R-4: hosted tools the request offered and a translated upstream cannot run are named in the response header
`x-gatehouse-dropped-tools` and in the log (not when every target of the route speaks the Responses API).
"""

import asyncio
import logging
import time
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import timedelta

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from . import catalog, formats, routing, tokens, upstreams
from .attempts import target_options
from .core import parse_body
from .errors import GatewayError, InvalidRequest, NotFound, body_limit
from .formats import sse
from .formats.responses import ids as responses_ids

log = logging.getLogger(__name__)

responses = formats.get("responses")
DROPPED_TOOLS_HEADER = "x-gatehouse-dropped-tools"
STORED_EVENTS = frozenset({"response.completed", "response.incomplete"})
PURGE_EVERY_SECONDS = 3600.0
ITEM_ID_PREFIXES = {  # input items the caller sent without an id get one, as OpenAI lists them
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "reasoning": "rs",
}
RECENT_PER_CONNECTION = 4
COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")  # Anthropic accepts these


def configure() -> None:
    """R-5: reasoning items carry thinking blocks sealed under a key derived from the gateway's encryption key
    (formats.responses.reasoning derives it with HMAC-SHA256 and its own context string). Called once per
    process by ProxyConfig.ready, so web processes and batch workers seal and open alike."""
    responses.configure_reasoning(settings.GATEWAY_ENCRYPTION_KEY)


def retention_days() -> float:
    return float(settings.GATEWAY_RESPONSES_RETENTION_DAYS)


# --- one turn: before and after core.run ----------------------------------------------------------------------


@dataclass(slots=True)
class Turn:
    """`body`: what core.run gets. The raw bytes when they do not parse (the core refuses them and records the
    refusal), else the parsed body, its input expanded when it continues a stored response."""

    key: object
    body: dict | bytes
    store: bool = False
    dropped_tools: list = field(default_factory=list)
    items: list | None = None  # the input as the caller sent it, when token reduction may edit `body`
    recent: dict | None = None  # a WebSocket connection's own responses (see the module docstring)

    async def keep(self, result):
        if self.dropped_tools:
            result.headers[DROPPED_TOOLS_HEADER] = ",".join(self.dropped_tools)
            log.info(
                "responses request %s: hosted tools dropped for a translated upstream: %s",
                result.headers.get("x-request-id", "?"), ", ".join(self.dropped_tools),
            )  # fmt: skip
        if not (self.store or self.recent is not None) or result.status != 200:
            return result
        if result.chunks is None:
            await self._save(orjson.loads(result.content))
            return result
        return replace(result, chunks=self._watch(result.chunks))

    async def _watch(self, chunks):
        """The stream unchanged; its terminal Response object is stored before that event is passed on, so a
        client that reacts to response.completed with a follow-up always finds it."""
        parser = sse.SSEParser()
        async with aclosing(chunks):  # a client that leaves closes the core's stream too (it settles the call)
            async for chunk in chunks:
                for event in parser.feed(chunk):
                    if event.event in STORED_EVENTS or (event.event is None and _terminal(event.data)):
                        await self._save(orjson.loads(event.data).get("response"))
                yield chunk

    async def _save(self, response: dict) -> None:
        if not isinstance(response, dict) or not response.get("id"):
            return
        sent = self.items if self.items is not None else responses.input_items(self.body)
        items = [_with_id(item) for item in sent]
        if self.recent is not None:
            _remember(self.recent, response, items)
        if not self.store:
            return
        try:
            await sync_to_async(_insert, thread_sensitive=False)(self.key, response, items)
        except Exception:  # the answer matters more than its copy: the client still gets it
            log.exception("could not store response %s", response.get("id"))
            return
        _purge_now_and_then()


def _terminal(data: bytes) -> bool:
    """A data-only event (an upstream that sends no `event:` lines, passed through) that ends the response."""
    if b'"response.completed"' not in data and b'"response.incomplete"' not in data:
        return False
    try:
        return orjson.loads(data).get("type") in STORED_EVENTS
    except (orjson.JSONDecodeError, AttributeError):
        return False


async def begin(key, raw: bytes | dict, recent: dict | None = None) -> Turn:
    """`raw`: the request body as received, or already parsed (a WebSocket frame's)."""
    body = raw if isinstance(raw, dict) else _parsed(raw)
    if body is None:
        return Turn(key, raw)
    previous = body.get("previous_response_id")
    if previous is not None and isinstance(body.get("input", ""), (str, list)):  # a bad input: the core says so
        body = responses.expand_previous(body, await _history(key, previous, recent))
    try:
        dropped = responses.dropped_tools(body) if await _translated(key, body.get("model")) else []
    except InvalidRequest:  # malformed tools: the core refuses the request (and records it)
        dropped = []
    turn = Turn(key, body, store=body.get("store") is not False, dropped_tools=dropped, recent=recent)
    optimize = getattr(key, "optimize", None)
    kept = turn.store or recent is not None
    if kept and optimize is not None and optimize.reduces:  # the layers edit the body in place; the store keeps
        turn.items = orjson.loads(orjson.dumps(responses.input_items(body)))  # what was sent
    return turn


def _parsed(raw: bytes) -> dict | None:
    """The body, or None when the core must refuse it (too large, not JSON, not an object)."""
    if len(raw) > body_limit():
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _remember(recent: dict, response: dict, items: list) -> None:
    recent.pop(response["id"], None)
    while len(recent) >= RECENT_PER_CONNECTION:
        del recent[next(iter(recent))]  # dicts keep insertion order: the oldest
    recent[response["id"]] = [*items, *(response.get("output") or [])]


async def _translated(key, model) -> bool:
    """Will the request reach an upstream of another API (one that cannot run hosted tools)? Any of the
    route's targets may serve it, so: does any of them speak another API."""
    try:
        route = (await routing.snapshot()).resolve(key, model)
    except GatewayError:  # an unknown model: the core says so
        return False
    return any(upstreams.get(target.provider.kind).api != responses.NAME for target in route.targets)


async def _history(key, response_id, recent: dict | None = None) -> list[dict]:
    """The items a follow-up continues from: the stored response's input, then its output."""
    if not isinstance(response_id, str) or not response_id:
        raise InvalidRequest("Invalid 'previous_response_id': expected a string.", param="previous_response_id")
    if recent is not None and response_id in recent:
        return list(recent[response_id])
    row = await sync_to_async(_load, thread_sensitive=False)(key, response_id, ("input_items", "response"))
    if row is None:
        raise InvalidRequest(
            f"Previous response with id '{response_id}' not found.", param="previous_response_id"
        )  # fmt: skip
    input_items, response = row
    return [*orjson.loads(input_items), *orjson.loads(response).get("output", [])]


# --- the stored-response endpoints ----------------------------------------------------------------------------


async def retrieve(key, response_id: str) -> bytes:
    row = await sync_to_async(_load, thread_sensitive=False)(key, response_id, ("response",))
    if row is None:
        raise _not_found(response_id)
    return row[0].encode()


async def delete(key, response_id: str) -> dict:
    if not await sync_to_async(_delete, thread_sensitive=False)(key, response_id):
        raise _not_found(response_id)
    return {"id": response_id, "object": "response", "deleted": True}


async def list_input_items(key, response_id: str, params) -> dict:
    """OpenAI's paging: `order` desc (default) or asc, `after` an item id, `limit` 1..100 (default 20)."""
    row = await sync_to_async(_load, thread_sensitive=False)(key, response_id, ("input_items",))
    if row is None:
        raise _not_found(response_id)
    items = orjson.loads(row[0])
    order = params.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest("Invalid 'order': expected 'asc' or 'desc'.", param="order")
    if order == "desc":
        items.reverse()
    after = params.get("after")
    if after:
        position = next((i for i, item in enumerate(items) if item.get("id") == after), None)
        if position is None:
            raise InvalidRequest(f"No input item with id '{after}' in this response.", param="after")
        items = items[position + 1 :]
    limit = _limit(params.get("limit"))
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(items) > limit,
    }


async def count_input_tokens(key, raw: bytes, client_headers) -> dict:
    """POST /v1/responses/input_tokens. Exact when the route's first choice is an Anthropic upstream (the
    canonical request, rendered for it, goes to its count_tokens like Claude Code's counts do); otherwise the
    local estimate in proxy.tokens."""
    body = parse_body(raw, "responses")
    if body.get("previous_response_id") is not None:
        body = responses.expand_previous(body, await _history(key, body["previous_response_id"]))
    route = (await routing.snapshot()).resolve(key, body.get("model"))
    request = responses.parse_request(body)
    target = route.targets[0]
    if catalog.counts_tokens(target):
        rendered = formats.get("anthropic").render_request(request, target_options(route, target, request.model))
        counted = {name: rendered[name] for name in COUNT_TOKENS_FIELDS if name in rendered}
        answer = await catalog.count_tokens(key, {**counted, "model": request.model}, client_headers)
        input_tokens = answer.get("input_tokens")
    else:
        input_tokens = tokens.estimate_input_tokens(request)
    return {"object": "response.input_tokens", "input_tokens": input_tokens}


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.")


def _limit(value) -> int:
    if value in (None, ""):
        return 20
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise InvalidRequest("Invalid 'limit': expected an integer from 1 to 100.", param="limit")
    return limit


def _with_id(item) -> dict:
    """An input item as OpenAI lists it: with an id, and a message's string content as a content part."""
    if not isinstance(item, dict):
        return item
    item = dict(item)
    kind = item.setdefault("type", "message")
    if kind == "message":
        content = item.get("content")
        if isinstance(content, str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": part, "text": content}]
        item.setdefault("status", "completed")
    if not item.get("id"):
        item["id"] = responses_ids.new_id(ITEM_ID_PREFIXES.get(kind, "item"))
    return item


# --- the rows -------------------------------------------------------------------------------------------------


def _cutoff():
    days = retention_days()
    return timezone.now() - timedelta(days=days) if days > 0 else None


def _visible(key):
    from .models import StoredResponse

    rows = StoredResponse.objects.filter(project_id=key.project_id)
    cutoff = _cutoff()
    return rows.filter(created_at__gte=cutoff) if cutoff is not None else rows


def _load(key, response_id: str, fields: tuple[str, ...]):
    if "\x00" in response_id:  # no stored id has one, and PostgreSQL refuses the query (a 500, found by fuzzing)
        return None
    return _visible(key).filter(id=response_id).values_list(*fields).first()


def _delete(key, response_id: str) -> bool:
    if "\x00" in response_id:
        return False
    deleted, _ = _visible(key).filter(id=response_id).only("id").delete()  # only: not the big columns
    return deleted > 0


def _insert(key, response: dict, items: list) -> None:
    from .models import StoredResponse

    StoredResponse.objects.create(  # a plain INSERT: ids are new (update_or_create's transaction can meet
        id=response["id"],  # SQLite's writer lock)
        project_id=key.project_id,
        api_key_id=getattr(key, "id", None),
        model=str(response.get("model") or "")[:200],
        status=str(response.get("status") or ""),
        response=orjson.dumps(response).decode(),
        input_items=orjson.dumps(items).decode(),
    )


def purge(days: float | None = None) -> int:
    """Delete stored responses older than the retention (or `days`); returns how many went."""
    from .models import StoredResponse

    days = retention_days() if days is None else days
    if days <= 0:
        return 0
    old = StoredResponse.objects.filter(created_at__lt=timezone.now() - timedelta(days=days))
    deleted, _ = old.only("id").delete()  # a global post_delete receiver rules out a fast delete: ids only
    return deleted


_last_purge = 0.0
_purging: set = set()  # the running purge task (a reference, so it is not collected mid-way)


def _purge_now_and_then() -> None:
    global _last_purge
    now = time.monotonic()
    if _purging or (_last_purge and now - _last_purge < PURGE_EVERY_SECONDS):
        return
    _last_purge = now
    task = asyncio.get_running_loop().create_task(_purge_quietly())
    _purging.add(task)
    task.add_done_callback(_purging.discard)


async def _purge_quietly() -> None:
    try:
        deleted = await sync_to_async(purge, thread_sensitive=False)()
    except Exception:
        log.exception("purging old stored responses failed")
        return
    if deleted:
        log.info("purged %d stored responses older than %s days", deleted, retention_days())
