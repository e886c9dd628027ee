"""A lean HTTP/1.1 load generator: asyncio protocols over raw sockets, keep-alive, closed loop.

Each of `concurrency` workers owns one keep-alive connection and sends its pre-built request bytes again and again
until the measuring window ends. Parsing is the minimum: the status line, Content-Length or chunked framing,
Connection: close. Per request it records the start, the time to the first body byte and the end. Nothing is
parsed as JSON; a response is "ok" if its status is 200 and the body carries the point's completion marker (for
streams the terminal event, so a stream that broke after its 200 counts as an error).

Bounded: every point stops starting requests at its deadline; each request has a timeout; in-flight requests are
allowed to finish (so every request the gateway received is one it can record).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from dataclasses import dataclass, field

perf = time.perf_counter
KEEP_BODY = 8192  # bytes of each body kept for the marker check and error samples


class ResponseError(Exception):
    pass


class Conn(asyncio.Protocol):
    """One keep-alive connection; `request()` sends the bytes and resolves to (status, ttfb_abs, end_abs, body)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.fut: asyncio.Future | None = None
        self.closed = False
        self.reset()

    def reset(self) -> None:
        self.state = 0  # 0 headers, 1 content-length body, 2 chunked body, 3 read until close, 4 done
        self.head = bytearray()
        self.body = bytearray()
        self.cbuf = bytearray()
        self.remaining = 0
        self.status = 0
        self.first = 0.0
        self.close_after = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        fut = self.fut
        if fut is not None and not fut.done():
            if self.state == 3:
                self._done(perf())
            else:
                fut.set_exception(ConnectionError(f"connection closed (state {self.state}): {exc}"))

    def request(self, data: bytes) -> asyncio.Future:
        self.reset()
        self.fut = self.loop.create_future()
        self.transport.write(data)
        return self.fut

    def _done(self, now: float) -> None:
        self.state = 4
        fut = self.fut
        if fut is not None and not fut.done():
            fut.set_result((self.status, self.first or now, now, bytes(self.body)))

    def _keep(self, data) -> None:
        if len(self.body) < KEEP_BODY:
            self.body += data[: KEEP_BODY - len(self.body)]
        else:  # keep the tail too: the terminal event of a long stream
            self.body[KEEP_BODY // 2:] = (self.body[KEEP_BODY // 2:] + data)[-(KEEP_BODY // 2):]

    def data_received(self, data: bytes) -> None:
        now = perf()
        if self.state == 0:
            self.head += data
            i = self.head.find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(self.head[:i])
            rest = bytes(self.head[i + 4:])
            try:
                self.status = int(head[9:12])
            except ValueError:
                self._fail(f"bad status line {head[:40]!r}")
                return
            lower = head.lower()
            self.close_after = b"\r\nconnection: close" in lower
            if b"\r\ntransfer-encoding: chunked" in lower:
                self.state = 2
            else:
                j = lower.find(b"\r\ncontent-length:")
                if j >= 0:
                    end = lower.find(b"\r\n", j + 2)
                    self.remaining = int(lower[j + 17: end if end >= 0 else None])
                    self.state = 1
                    if self.remaining == 0:
                        self._done(now)
                        return
                else:
                    self.state = 3
            if not rest:
                return
            data = rest
        if self.state == 4:
            return
        if not self.first:
            self.first = now
        if self.state == 1:
            self._keep(data)
            self.remaining -= len(data)
            if self.remaining <= 0:
                self._done(now)
        elif self.state == 2:
            self._chunked(data, now)
        elif self.state == 3:
            self._keep(data)

    def _chunked(self, data: bytes, now: float) -> None:
        buf = self.cbuf
        buf += data
        pos = 0
        n = len(buf)
        while True:
            if self.remaining > 0:  # inside a chunk's data (+ its CRLF)
                take = min(self.remaining, n - pos)
                if take <= 0:
                    break
                piece = buf[pos: pos + take]
                self.remaining -= take
                pos += take
                if self.remaining >= 2:
                    self._keep(piece)
                elif self.remaining == 1:
                    self._keep(piece[:-1])
                else:
                    self._keep(piece[:-2])
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            try:
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            except ValueError:
                self._fail(f"bad chunk size {bytes(buf[pos:eol])[:20]!r}")
                return
            if size == 0:
                # last-chunk; no trailers expected: CRLF follows
                if buf.find(b"\r\n", eol + 2) >= 0 or n - (eol + 2) >= 2:
                    del buf[:]
                    self._done(now)
                    return
                break
            pos = eol + 2
            self.remaining = size + 2
        del buf[:pos]

    def _fail(self, why: str) -> None:
        self.state = 4
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ResponseError(why))
        if self.transport is not None:
            self.transport.close()


@dataclass(frozen=True)
class Job:
    """What one worker sends: request bytes to host:port, and the marker a complete response carries."""
    host: str
    port: int
    request: bytes
    marker: bytes
    name: str = ""


@dataclass
class PointResult:
    requests: int = 0  # completed in the window (ok + error)
    ok: int = 0
    errors: int = 0
    sent_total: int = 0  # every request started, warm-up included (the ledger must hold one row for each)
    latencies: list = field(default_factory=list)  # seconds, ok requests completed in the window
    ttfbs: list = field(default_factory=list)
    window: float = 0.0
    error_samples: list = field(default_factory=list)  # (job name, description)
    loadgen_cpu: float = 0.0  # seconds of this process's CPU in the window
    samples: dict = field(default_factory=dict)  # whatever the sampler returned: {"start": .., "end": ..}
    per_job_sent: dict = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.ok / self.window if self.window else 0.0


def percentile(values: list, q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_point(jobs: list[Job], concurrency: int, duration: float, warmup: float = 0.5,
                    timeout: float = 30.0, sampler=None, max_requests: int | None = None,
                    on_tick=None, tick_every: float = 10.0) -> PointResult:
    """Closed loop: `concurrency` workers, worker i sends jobs[i % len(jobs)]. Warm-up first (not measured), then
    a window of `duration` seconds. `sampler()` is called at the window's start and end (gateway CPU, RSS...)."""
    loop = asyncio.get_running_loop()
    res = PointResult()
    t_start = perf()
    t0 = t_start + warmup
    t1 = t0 + duration
    stop_sending = t1
    marks: dict = {}

    async def window_marks():
        await asyncio.sleep(max(0.0, t0 - perf()))
        marks["cpu0"] = _cpu_self()
        marks["t0"] = perf()
        if sampler:
            res.samples["start"] = sampler()
        if on_tick:
            while perf() < t1 - 0.01:
                await asyncio.sleep(min(tick_every, max(0.0, t1 - perf())))
                on_tick(perf() - marks["t0"], res)
        else:
            await asyncio.sleep(max(0.0, t1 - perf()))
        marks["cpu1"] = _cpu_self()
        marks["t1"] = perf()
        if sampler:
            res.samples["end"] = sampler()

    async def worker(idx: int):
        job = jobs[idx % len(jobs)]
        conn: Conn | None = None
        failures = 0
        while True:
            if perf() >= stop_sending:
                break
            if max_requests is not None and res.sent_total >= max_requests:
                break
            if conn is None or conn.closed:
                try:
                    _, conn = await asyncio.wait_for(
                        loop.create_connection(lambda: Conn(loop), job.host, job.port), timeout)
                except (OSError, asyncio.TimeoutError) as e:
                    failures += 1
                    res.errors += 1
                    if len(res.error_samples) < 5:
                        res.error_samples.append((job.name, f"connect: {e!r}"))
                    if failures > 50:
                        break
                    await asyncio.sleep(0.05)
                    continue
            begin = perf()
            res.sent_total += 1
            res.per_job_sent[job.name] = res.per_job_sent.get(job.name, 0) + 1
            try:
                status, first, end, body = await asyncio.wait_for(conn.request(job.request), timeout)
            except (ConnectionError, ResponseError, asyncio.TimeoutError, OSError) as e:
                end = perf()
                if begin >= t0 and end <= t1 + timeout:
                    res.requests += 1
                res.errors += 1
                if len(res.error_samples) < 5:
                    res.error_samples.append((job.name, f"{type(e).__name__}: {e}"))
                if conn.transport is not None:
                    conn.transport.close()
                conn = None
                failures += 1
                if failures > 50:
                    break
                continue
            good = status == 200 and job.marker in body
            if begin >= t0 and end <= t1:
                res.requests += 1
                if good:
                    res.ok += 1
                    res.latencies.append(end - begin)
                    res.ttfbs.append(first - begin)
            if not good:
                res.errors += 1
                if len(res.error_samples) < 5:
                    res.error_samples.append((job.name, f"HTTP {status}: {body[:600]!r}"))
            if conn.close_after:
                conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    marker_task = asyncio.ensure_future(window_marks())
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    if "t1" not in marks:  # the workers stopped early (max_requests, or too many failures)
        marker_task.cancel()
        try:
            await marker_task
        except asyncio.CancelledError:
            pass
        now = perf()
        marks.setdefault("cpu0", _cpu_self())
        marks.setdefault("t0", min(now, t0))
        marks["cpu1"], marks["t1"] = _cpu_self(), now
        if sampler:
            res.samples.setdefault("start", sampler())
            res.samples["end"] = sampler()
    else:
        await marker_task
    res.window = marks["t1"] - marks["t0"]
    res.loadgen_cpu = marks["cpu1"] - marks["cpu0"]
    return res


def new_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("BENCH_NO_UVLOOP") != "1":
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:
            pass
    return asyncio.new_event_loop()
