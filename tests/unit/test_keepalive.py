"""The keep-alive wrapper around upstream chunks (pure asyncio, no server)."""

import asyncio

import pytest

from proxy.keepalive import with_keepalive


async def _slow(items, delay):
    for item in items:
        await asyncio.sleep(delay)
        if isinstance(item, Exception):
            raise item
        yield item


def _collect(chunks, interval):
    async def run():
        return [item async for item in with_keepalive(chunks, interval)]

    return asyncio.run(run())


def test_chunks_pass_through_in_order_without_pings_when_the_upstream_is_lively():
    assert _collect(_slow([b"a", b"b", b"c"], 0.001), interval=1.0) == [b"a", b"b", b"c"]


def test_silence_longer_than_the_interval_yields_pings():
    out = _collect(_slow([b"a", b"b"], 0.25), interval=0.1)
    assert [x for x in out if x is not None] == [b"a", b"b"]
    assert out.count(None) >= 3  # two gaps of 250 ms at a 100 ms interval


def test_an_upstream_error_reaches_the_consumer():
    with pytest.raises(ConnectionError):
        _collect(_slow([b"a", ConnectionError("reset")], 0.01), interval=1.0)


def test_closing_the_consumer_stops_reading_the_upstream():
    read = []

    async def upstream():
        for i in range(100):
            await asyncio.sleep(0.01)
            read.append(i)
            yield b"x"

    async def run():
        stream = with_keepalive(upstream(), 1.0)
        await stream.__anext__()
        await stream.aclose()
        await asyncio.sleep(0.1)

    asyncio.run(run())
    assert len(read) < 5
