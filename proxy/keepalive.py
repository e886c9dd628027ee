"""Keep a client's stream alive while the upstream is silent (reasoning models can think for minutes).

`with_keepalive(chunks, interval)` yields the upstream's chunks as they come, and None whenever nothing came for
`interval` seconds; proxy.relay turns None into the caller format's ping. One reader task and one timer per
stream, a queue hand-off per chunk: no task per chunk.
"""

import asyncio

_END = object()


async def with_keepalive(chunks, interval: float):
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    last_activity = loop.time()

    async def read():
        nonlocal last_activity
        try:
            async for chunk in chunks:
                last_activity = loop.time()
                queue.put_nowait(chunk)
            queue.put_nowait(_END)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            queue.put_nowait(exc)

    def check():
        nonlocal timer, last_activity
        if loop.time() - last_activity >= interval:
            last_activity = loop.time()
            queue.put_nowait(None)
        timer = loop.call_at(last_activity + interval, check)

    reader = loop.create_task(read())
    timer = loop.call_later(interval, check)
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        timer.cancel()
        reader.cancel()
