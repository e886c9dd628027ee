"""A lean Redis connection for the two calls every limited request makes (admit, settle: one EVALSHA each).

Why not redis-py's asyncio client for these: measured on the benchmark machine, a round trip through it costs
~75-100 µs of CPU (connection pool, a lock and a wait_for per command, the pure-Python RESP3 parser), which alone
spends the policy layer's whole budget (150 µs per request). This connection costs ~15 µs per round trip: one
socket per event loop, commands pipelined on it (replies come back in order, matched to a FIFO of futures; the
commands of one loop iteration go out in one write), and replies parsed by hiredis (the C parser redis-py itself uses when installed). Everything else in state.py — rare
calls, resets, pings — still goes through redis-py.

Errors are redis-py's exception classes, so callers handle one family: ConnectionError when the socket cannot be
opened or is lost, TimeoutError when a reply is late (the connection is then dropped: later replies would be
matched to the wrong callers), ResponseError / NoScriptError for an error reply.
"""

import asyncio
import collections
import ssl

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError


def pack(*args) -> bytes:
    """One RESP command (str, bytes and int arguments)."""
    encoded = [a if type(a) is bytes else b"%d" % a if type(a) is int else str(a).encode() for a in args]
    return b"*%d\r\n" % len(encoded) + b"".join([b"$%d\r\n%b\r\n" % (len(a), a) for a in encoded])


class _Protocol(asyncio.Protocol):
    def __init__(self):
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.transport = None
        self.lost: Exception | None = None
        self.pending: list[bytes] = []  # commands of this loop iteration, written together (one syscall)
        self.sent: collections.deque[float] = collections.deque()  # when each awaited reply's command was sent
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiting.popleft()
            self.sent.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                text = str(reply)
                future.set_exception(NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text))
            else:
                future.set_result(reply)

    def send(self, command: bytes) -> None:
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append(command)

    def flush(self) -> None:
        commands, self.pending = self.pending, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(commands))

    def connection_lost(self, exc):
        self.lost = ConnectionError(f"Redis connection lost: {exc or 'closed by the server'}")
        self.sent.clear()
        if self.watchdog is not None:
            self.watchdog.cancel()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)


class Connection:
    """One pipelined connection to the Redis of `url`, for the event loop that first uses it."""

    def __init__(self, url: str, timeout: float):
        self.options = parse_url(url)
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future | None = None

    async def call(self, *args):
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        return await self._send(protocol, args)

    async def _send(self, protocol: _Protocol, args):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        protocol.waiting.append(future)
        protocol.sent.append(loop.time())
        protocol.send(pack(*args))
        if protocol.watchdog is None:
            protocol.watchdog = loop.call_later(self.timeout, self._watch, protocol)
        return await future

    def _watch(self, protocol: _Protocol) -> None:
        """One timer per connection, not one per call: fail everything if the oldest reply is overdue."""
        protocol.watchdog = None
        if not protocol.waiting:
            return
        loop = asyncio.get_running_loop()
        overdue = protocol.sent[0] + self.timeout - loop.time()
        if overdue > 0:
            protocol.watchdog = loop.call_later(overdue, self._watch, protocol)
            return
        late = TimeoutError(f"no reply from Redis within {self.timeout:g} s")
        while protocol.waiting:
            future = protocol.waiting.popleft()
            if not future.done():
                future.set_exception(late)
        protocol.sent.clear()
        protocol.transport.abort()  # replies still due would be matched to the wrong callers

    async def _connect(self) -> _Protocol:
        if self._connecting is None:  # one connect for every caller waiting on it
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            self._protocol = await asyncio.shield(connecting)
        finally:
            if connecting.done():
                self._connecting = None
        return self._protocol

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self.options
        try:
            if options.get("path"):
                opened = loop.create_unix_connection(_Protocol, options["path"])
            else:
                tls = ssl.create_default_context() if "SSL" in options.get("connection_class", type).__name__ else None
                opened = loop.create_connection(_Protocol, options.get("host", "localhost"), options.get("port", 6379),
                                                ssl=tls)  # fmt: skip
            _, protocol = await asyncio.wait_for(opened, self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise ConnectionError(f"cannot connect to Redis: {exc!r}") from None
        if options.get("password"):
            auth = [options["username"], options["password"]] if options.get("username") else [options["password"]]
            await self._send(protocol, ("AUTH", *auth))
        if options.get("db"):
            await self._send(protocol, ("SELECT", int(options["db"])))
        return protocol  # only now do other callers get it: their commands must follow AUTH and SELECT

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
