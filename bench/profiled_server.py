"""Run daphne or uvicorn under cProfile, for `python -m bench --profile ...` only (never in production).

    python -m bench.profiled_server --out PATH.pstats -- daphne -b 127.0.0.1 -p 8000 gateway_site.asgi:application

Profiling is off at start. SIGUSR1 turns it on (in the main thread: the event loop's thread, where the request
path runs), SIGUSR2 turns it off and writes PATH.pstats; a stop (SIGTERM) while on writes it too. Threads (the
ledger writer, sync_to_async workers) are not profiled: their CPU shows in the /proc figures, not here.
"""

from __future__ import annotations

import argparse
import cProfile
import runpy
import signal
import sys

_profile = cProfile.Profile()
_state = {"on": False, "out": ""}


def _start(signum, frame) -> None:
    if not _state["on"]:
        _state["on"] = True
        _profile.enable()


def _stop(signum=None, frame=None) -> None:
    if _state["on"]:
        _profile.disable()
        _state["on"] = False
        _profile.dump_stats(_state["out"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("server", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    server = [a for a in args.server if a != "--"]
    _state["out"] = args.out
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
    sys.argv = server
    try:
        runpy.run_module(server[0], run_name="__main__", alter_sys=True)
    finally:
        _stop()


if __name__ == "__main__":
    main()
