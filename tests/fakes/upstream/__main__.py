"""python -m tests.fakes.upstream --host 127.0.0.1 --port 9100 [--chunks 20] [--key sk-fake] [--coalesce]"""

from __future__ import annotations

import argparse
import asyncio
import signal

from .server import DEFAULT_CHUNKS, DEFAULT_KEY, DEFAULT_MODELS, READY_PREFIX, State, new_event_loop, start_server


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.fakes.upstream", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100, help="0 = any free port (read it from the ready line)")
    ap.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS, help="text pieces per streamed reply")
    ap.add_argument("--key", default=DEFAULT_KEY, help='accepted API key; "" accepts anything')
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated ids for /v1/models")
    ap.add_argument("--coalesce", action="store_true",
                    help="write each stream in one go instead of one write per event (cheaper; for load tests)")
    args = ap.parse_args(argv)
    state = State(chunks=args.chunks, key=args.key, models=[m for m in args.models.split(",") if m],
                  coalesce=args.coalesce)

    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    runner, port = loop.run_until_complete(start_server(state, args.host, args.port))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"{READY_PREFIX}http://{args.host}:{port}", flush=True)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        loop.run_until_complete(runner.cleanup())
        loop.close()


if __name__ == "__main__":
    main()
