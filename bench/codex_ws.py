"""`python -m bench codex-ws`: a Codex session over the Responses WebSocket (proxy/ws.py) against the same session
over HTTP/SSE — per-turn latency and the gateway's CPU per turn.

The session is the one recorded with the real Codex CLI (tests/fixtures/sessions/codex-recorded.json, 11 requests
whose bodies grow from ~40 KB to ~200 KB as Codex replays its history), sent turn after turn as Codex sends it:
over HTTP, one keep-alive connection and a streamed POST /v1/responses per turn; over WebSocket, one connection
and a `response.create` frame per turn (the same body). A turn is timed from the request's first byte to its
`response.completed` event. The gateway (daphne, pinned to --gateway-cpu with the fake upstream on --aux-cpu,
bench/harness.py) translates to the fake upstream (--upstream: OpenAI-compatible or Anthropic; 20 chunks per
answer). Sessions alternate between the transports (--sessions of each), so drift on a shared machine hits both
alike; latencies are over all turns of a transport, its CPU is the total over them divided by the turns.

    .venv/bin/python -m bench codex-ws [--sessions 20] [--upstream openai|anthropic]
"""

import argparse
import asyncio
import json
import statistics
import sys
import time

import httpx
from websockets.asyncio.client import connect

from . import bodies
from .harness import Harness, proc_cpu_seconds
from .replay_savings import codex_recorded


async def over_sse(url: str, key: str, turns: list[dict]) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=60) as client:
        for body in turns:
            start = time.perf_counter()
            async with client.stream("POST", "/v1/responses", json={**body, "stream": True}) as response:
                text = b""
                async for chunk in response.aiter_bytes():
                    text += chunk
                    if b"response.completed" in chunk or b"response.failed" in chunk:
                        break
            assert response.status_code == 200 and b"response.completed" in text, text[-500:]
            latencies.append(time.perf_counter() - start)
    return latencies


async def over_ws(url: str, key: str, turns: list[dict]) -> list[float]:
    latencies = []
    uri = url.replace("http://", "ws://") + "/v1/responses"
    async with connect(uri, additional_headers={"authorization": f"Bearer {key}"}, max_size=None) as sock:
        for body in turns:
            start = time.perf_counter()
            await sock.send(json.dumps({"type": "response.create", **{k: v for k, v in body.items() if k != "stream"}}))
            for _ in range(10_000):
                event = json.loads(await sock.recv())
                if event["type"] in ("response.completed", "response.failed", "error"):
                    break
            assert event["type"] == "response.completed", event
            latencies.append(time.perf_counter() - start)
    return latencies


def session(harness: Harness, transport, turns: list[dict]) -> tuple[list[float], float]:
    """One session: its per-turn latencies and the gateway's CPU seconds over it (/proc counts in ticks of 10 ms:
    the figure reported is the sum over all sessions of a transport, divided by its turns)."""
    url = f"http://127.0.0.1:{harness.gateway_port}"
    before = proc_cpu_seconds(harness.gateway_pid)
    latencies = asyncio.run(transport(url, harness.key, turns))
    return latencies, proc_cpu_seconds(harness.gateway_pid) - before


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench codex-ws")
    ap.add_argument("--sessions", type=int, default=20, help="sessions per transport (alternating)")
    ap.add_argument("--upstream", choices=("openai", "anthropic"), default="openai")
    ap.add_argument("--gateway-cpu", type=int, default=0)
    ap.add_argument("--aux-cpu", type=int, default=1)
    args = ap.parse_args(argv)
    turns = [{**body, "model": bodies.ALIAS[args.upstream]} for _, body in codex_recorded()]
    harness = Harness(gateway_cpu=args.gateway_cpu, aux_cpu=args.aux_cpu, log=lambda m: print(m, file=sys.stderr))
    figures = {"HTTP/SSE": ([], [0.0]), "WebSocket": ([], [0.0])}
    try:
        harness.start_fake()
        harness.prepare_db()
        harness.start_gateway("daphne")
        session(harness, over_sse, turns[:2])  # warm-up: imports, caches, connections
        session(harness, over_ws, turns[:2])
        for n in range(args.sessions):
            for name, transport in (("HTTP/SSE", over_sse), ("WebSocket", over_ws)):
                latencies, cpu = session(harness, transport, turns)
                figures[name][0].extend(latencies)
                figures[name][1][0] += cpu
                print(f"session {n + 1} {name}: p50 {statistics.median(latencies) * 1000:.1f} ms", file=sys.stderr)
    finally:
        harness.close()
    print("| transport | turns | turn p50 ms | turn p90 ms | gateway CPU ms/turn |")
    print("|---|---|---|---|---|")
    for name, (latencies, (cpu,)) in figures.items():
        deciles = statistics.quantiles(latencies, n=10)
        print(f"| {name} | {len(latencies)} | {statistics.median(latencies) * 1000:.1f} | {deciles[8] * 1000:.1f} "
              f"| {cpu * 1000 / len(latencies):.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
