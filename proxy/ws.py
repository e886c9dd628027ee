"""The Responses API over WebSocket: `/v1/responses` upgraded, as Codex's built-in `openai` provider (and a custom
provider with `supports_websockets = true`) and the openai SDK's `client.responses.connect()` speak it.

    client -> {"type": "response.create", <the fields of POST /v1/responses, without stream>}
    server -> the events of the SSE stream, in order, each event's JSON as one text frame
    client -> {"type": "response.create", "generate": false, ...}: a warm-up, answered with an empty completed
              response (no upstream call, no row) that the next request continues from with previous_response_id
    server -> {"type": "error", "status": 400, "error": {"type", "code", "message", "param", "headers"}}
              for a request refused before its stream starts (the HTTP error body, as the SDK's ResponseWsError)

One connection answers any number of responses, one at a time. Each `response.create` goes through exactly what
POST /v1/responses goes through (proxy/api.py): proxy.responses_store.begin resolves previous_response_id (on
this connection first: WebSocket mode chains `store: false` responses within a connection, which Codex relies
on), proxy.core.run applies the policies, routing, translation, cache and token reduction and writes one ledger
row, and Turn.keep stores the response. A client that closes mid-response cancels the task relaying it: the
upstream request is closed and the row says `cancelled` (the HTTP path does the same in gateway_site/asgi.py).
A graceful stop waits for the responses in flight like HTTP requests, then ends them with the error event
(`responses_in_flight`, gateway_site/server.py; row `interrupted`).

The key comes from the upgrade request's headers (proxy.auth, the same lookup, refusals and failure throttling
as HTTP), and is checked again for every response.create (a key revoked since then gets the error and the close). Under daphne, gateway_site/daphne_guard.py refuses a bad key at the upgrade's headers with the HTTP
401/429 in the Responses error shape; what is refused here (a key over its connection limit, or a bad key where
no guard ran) is an HTTP answer where the server supports the ASGI denial response (uvicorn), else an accepted
socket that gets the `error` event and is closed with 4000 + the status (4429).

Limits (gateway_site/settings.py GATEWAY_WS_*): frames per connection and the connection's lifetime (past
either, a response.create gets the error code LIMIT_CODE and the socket closes: Codex then opens a new one and
sends the request again), idle time (closed with 1000), connections per key in this process (refused with a
429), and frame size (an `error` event; the connection stays open, like every other malformed frame).
"""

import asyncio
import time
from contextlib import aclosing

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import api, auth, core, formats, responses_store, routing, validate
from .errors import GatewayError, InvalidRequest, RateLimited, unexpected
from .formats import sse

responses = formats.get("responses")
LIMIT_CODE = "websocket_connection_limit_reached"  # OpenAI's code for a connection past its limits; Codex reconnects
NORMAL_CLOSURE = 1000
REFUSED = 4000  # + the HTTP status of a refusal (4401, 4429): daphne sends no 1008, only 1000 and 3000-4999
WARM_UP_TURN = {"type": "message", "role": "user", "content": "(warm-up)"}
_open: dict[int, int] = {}  # key id -> its connections open in this process
_responding: set = set()  # the tasks relaying a response, for the graceful stop (gateway_site/server.py)


def responses_in_flight() -> int:
    return len(_responding)


class ResponsesSocket(AsyncWebsocketConsumer):
    channel_layer_alias = "no-channel-layer"  # no such layer: the socket only answers its own client

    key = None
    task: asyncio.Task | None = None  # the response being relayed
    watchdog: asyncio.Task | None = None

    async def dispatch(self, message):
        # Channels' dispatch closes old database connections in a worker thread before every message; nothing
        # here touches the database on this thread (the lookups run in executor threads of their own).
        await getattr(self, "websocket_" + message["type"].removeprefix("websocket."))(message)

    async def websocket_connect(self, message):
        self.headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in self.scope["headers"]}
        self.recent: dict = {}  # this connection's responses, for previous_response_id (responses_store)
        self.frames, self.opened = 0, time.monotonic()
        self.active = self.opened
        client = self.scope.get("client")
        self.address = client[0] if client else None
        try:
            key = await auth.authenticate_request(self.headers, self.address)
            _count_in(key)
        except GatewayError as err:
            return await self._refuse(err)
        except Exception as exc:  # the key store unreachable: an error in the Responses format
            return await self._refuse(unexpected(exc, "checking an API key"))
        self.key = key
        await self.accept()
        self.watchdog = asyncio.create_task(self._watch())

    async def websocket_receive(self, message):
        if self.key is None:  # refused at the upgrade: the close is on its way
            return
        self.active = time.monotonic()
        self.frames += 1
        if self.frames > settings.GATEWAY_WS_MAX_FRAMES or self.active - self.opened > _lifetime():
            await self._send_error(_limit_reached())
            await self.close(NORMAL_CLOSURE)
            return
        try:
            body = _request_body(message)
        except GatewayError as err:
            await self._send_error(err)  # the connection stays usable
            return
        if self.task is not None and not self.task.done():
            await self._send_error(InvalidRequest("a response is already in progress on this connection"))
            return
        self.task = asyncio.create_task(self._respond(body))
        _responding.add(self.task)
        self.task.add_done_callback(_responding.discard)

    async def websocket_disconnect(self, message):
        for task in (self.task, self.watchdog):
            if task is not None and not task.done():
                task.cancel()  # the relay records the response as cancelled and closes the upstream request
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self.key is not None:
            _count_out(self.key)
            self.key = None
        await super().websocket_disconnect(message)

    async def _respond(self, body: dict) -> None:
        """One response.create: the request as POST /v1/responses runs it, its events out as frames."""
        try:
            # The key again, as every HTTP request checks it (a cache hit): one revoked or expired since the
            # upgrade is refused, and changed limits apply, on a connection that may live an hour.
            self.key = await auth.authenticate_request(self.headers, self.address)
            turn = await responses_store.begin(self.key, body, self.recent)
            if body.get("generate") is False:
                result = await _warm_up(self.key, turn.body)
            else:
                result = await core.run(self.key, "responses", turn.body, client_headers=self.headers)
            await self._relay(await turn.keep(result))
        except GatewayError as err:
            await self._send_error(err)
            if err.kind == "authentication":
                await self.close(REFUSED + err.status)
        except Exception as exc:
            await self._send_error(unexpected(exc, "a Responses WebSocket request"))
        finally:
            self.active = time.monotonic()  # idle time counts from the end of the last response

    async def _relay(self, result: core.Result) -> None:
        if result.chunks is None:  # every request here streams; kept for a layer that answers whole
            await self.send(text_data=result.content.decode())
            return
        parser = sse.SSEParser()
        async with aclosing(result.chunks) as chunks:
            async for chunk in chunks:
                for event in parser.feed(chunk):
                    await self._send_event(event.data)
        for event in parser.finish():
            await self._send_event(event.data)

    async def _send_event(self, data: bytes) -> None:
        if data.startswith(b"{"):  # not a keep-alive, nor a `[DONE]` an upstream may end with
            await self.send(text_data=data.decode())

    async def _send_error(self, err: GatewayError) -> None:
        await self.send(text_data=orjson.dumps(error_event(err)).decode())

    async def _refuse(self, err: GatewayError) -> None:
        if "websocket.http.response" in self.scope.get("extensions", {}):  # uvicorn: an HTTP answer, as on HTTP
            response = api.error_response(self.scope["path"], self.headers, err)
            headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
            await self.base_send({"type": "websocket.http.response.start", "status": response.status_code,
                                  "headers": headers})  # fmt: skip
            await self.base_send({"type": "websocket.http.response.body", "body": response.content})
            return
        await self.accept()
        await self._send_error(err)
        await self.close(REFUSED + err.status)

    async def _watch(self) -> None:
        """Close the connection once idle for GATEWAY_WS_IDLE_SECONDS, or past its lifetime between responses
        (never in the middle of one)."""
        while True:
            now = time.monotonic()
            deadline = min(self.active + settings.GATEWAY_WS_IDLE_SECONDS, self.opened + _lifetime())
            busy = self.task is not None and not self.task.done()
            if now >= deadline and not busy:
                await self.close(NORMAL_CLOSURE)
                return
            await asyncio.sleep(max(deadline - now, 0.05) if not busy else 0.5)


def _request_body(message: dict) -> dict:
    """The request a frame carries: the fields of POST /v1/responses, streamed. InvalidRequest (or 413) for a
    frame that is not a response.create."""
    data = message.get("text")
    data = data.encode() if data is not None else message.get("bytes") or b""
    event = core.parse_body(data, limit=settings.GATEWAY_WS_MAX_FRAME_BYTES)  # the HTTP body's refusals
    kind = event.pop("type", None)
    if kind != "response.create":
        raise InvalidRequest(f"unsupported event type {kind!r}: this server accepts response.create", param="type")
    event["stream"] = True
    return event


async def _warm_up(key, body: dict) -> core.Result:
    """`generate: false`: no upstream call and no ledger row (nothing is generated or charged), an empty completed
    response whose id a follow-up continues from (Turn.keep remembers its input). The model must still be one
    the key may use."""
    (await routing.snapshot()).resolve(key, body.get("model"))
    # Its input may be the prompt alone (Codex sends its developer message): with a stand-in user turn the request
    # is checked like any other. The stand-in is neither answered nor kept (Turn.keep keeps the turn's own input).
    checked = {**body, "input": [*responses.input_items(body), WARM_UP_TURN]}
    response = responses.empty_response(responses.parse_request(validate.check("responses", checked)))
    return core.Result(200, chunks=_once(responses.replay.events(response)))


async def _once(chunk: bytes):
    yield chunk


def error_event(err: GatewayError) -> dict:
    """The error as the WebSocket mode sends it: the HTTP error body's fields, its status and headers."""
    status, content, extra = responses.render_error(err)
    try:
        fields = orjson.loads(content).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        fields = None
    if not isinstance(fields, dict):  # an upstream's own error body that is not OpenAI's shape
        fields = {"type": "api_error", "code": None, "message": content.decode(errors="replace"), "param": None}
    headers = {**extra, **err.headers}
    return {"type": "error", "status": status, "error": {**fields, **({"headers": headers} if headers else {})}}


def _limit_reached() -> GatewayError:
    return InvalidRequest(
        "this WebSocket connection has reached its limit (its lifetime or its number of frames); "
        "open a new connection to continue", code=LIMIT_CODE,
    )  # fmt: skip


def _lifetime() -> float:
    return settings.GATEWAY_WS_MAX_LIFETIME_SECONDS


def _count_in(key) -> None:
    held = _open.get(key.id, 0)
    limit = settings.GATEWAY_WS_MAX_CONNECTIONS_PER_KEY
    if limit and held >= limit:
        raise RateLimited(f"this API key already has {held} WebSocket connections open (the limit is {limit})")
    _open[key.id] = held + 1


def _count_out(key) -> None:
    held = _open.get(key.id, 0) - 1
    if held > 0:
        _open[key.id] = held
    else:
        _open.pop(key.id, None)
