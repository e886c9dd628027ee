"""Batch throughput through one Celery worker, and what the gateway costs per item.

    REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python -m bench batches [--items 2000] [--upstream openai]

One worker process (`celery worker --concurrency=1`, pinned to one core) runs an Anthropic Message Batch of
--items small requests item by item (GATEWAY_BATCH_NATIVE=false) against the fake upstream (other core, no
artificial latency); the gateway (daphne) only takes the batch and answers the polls. Figures:
  items/s          items / (last item ended - batch created), from the batch's own timestamps
  CPU per item     the worker's CPU time (main process and its pool child) / items: everything the gateway does
                   for an item (Celery, the request core with routing, translation, policies, the ledger, the
                   item's rows), the fake excluded
  direct items/s   the same requests sent straight to the fake by one asyncio process, GATEWAY_BATCH_ITEM_CONCURRENCY
                   at a time: the upstream's own ceiling on this machine
The Redis database given (default 14) is flushed first. Bounded: --timeout seconds at most.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time

import httpx
import redis

from . import bodies
from .harness import ROOT, Harness, proc_cpu_seconds, taskset


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench batches", description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--upstream", default="openai", choices=["openai", "anthropic"],
                    help="the fake's API the items reach (openai: translated from the Anthropic batch)")
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14")
    ap.add_argument("--timeout", type=float, default=600)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    redis.Redis.from_url(args.redis_url).flushdb()
    os.environ.update({"REDIS_URL": args.redis_url, "CELERY_BROKER_URL": args.redis_url,
                       "GATEWAY_BATCH_NATIVE": "false", "GATEWAY_BATCH_MAX_ITEMS": str(max(args.items, 100_000))})
    cpus = len(os.sched_getaffinity(0))
    h = Harness(gateway_cpu=0 if cpus > 1 else None, aux_cpu=1 if cpus > 1 else None, chunks=20,
                log=lambda *m: print(*m, file=sys.stderr))
    worker = None
    try:
        h.start_fake()
        secret = h.prepare_db()
        h.start_gateway("daphne")
        worker = _start_worker(h)
        result = _run_batch(h, secret, args, worker.pid)  # taskset execs: the Popen'd pid is celery's
        result["direct_items_per_s"] = asyncio.run(_direct(h, args))
        _print(result, args)
        return 0
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        h.close()


def _start_worker(h: Harness) -> subprocess.Popen:
    argv = taskset(h.gateway_cpu, [h.python, "-m", "celery", "-A", "gateway_site", "worker", "--concurrency=1",
                                   "--loglevel=WARNING", "--without-gossip", "--without-mingle"])
    process = subprocess.Popen(argv, cwd=ROOT, env=h.env(), stdout=(h.dir / "worker.log").open("wb"),
                               stderr=subprocess.STDOUT)
    time.sleep(4)  # the worker connects and forks its pool child; the batch waits in Redis meanwhile anyway
    if process.poll() is not None:
        raise RuntimeError((h.dir / "worker.log").read_text())
    return process


def _worker_cpu(pid: int) -> float:
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
    return proc_cpu_seconds(pid) + sum(proc_cpu_seconds(c) for c in children)


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError):
        return None


def _params(args, i: int) -> dict:
    return {"model": bodies.ALIAS[args.upstream], "max_tokens": 64,
            "messages": [{"role": "user", "content": f"SAY: item {i} of the benchmark batch"}]}


def _run_batch(h: Harness, secret: str, args, worker_pid: int) -> dict:
    url = f"http://127.0.0.1:{h.gateway_port}"
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    cpu_before = _worker_cpu(worker_pid)
    requests = [{"custom_id": f"b{i}", "params": _params(args, i)} for i in range(args.items)]
    created = httpx.post(f"{url}/v1/messages/batches", json={"requests": requests}, headers=headers, timeout=120)
    created.raise_for_status()
    batch_id, deadline = created.json()["id"], time.monotonic() + args.timeout
    while (batch := httpx.get(f"{url}/v1/messages/batches/{batch_id}", headers=headers).json())[
            "processing_status"] != "ended":
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch did not end in {args.timeout} s: {batch['request_counts']}")
        time.sleep(0.5)
    cpu = _worker_cpu(worker_pid) - cpu_before
    from datetime import datetime

    span = (datetime.fromisoformat(batch["ended_at"].replace("Z", "+00:00"))
            - datetime.fromisoformat(batch["created_at"].replace("Z", "+00:00"))).total_seconds()
    return {"counts": batch["request_counts"], "seconds": span, "items_per_s": args.items / span,
            "cpu_ms_per_item": 1000 * cpu / args.items}


async def _direct(h: Harness, args) -> float:
    concurrency = int(os.environ.get("GATEWAY_BATCH_ITEM_CONCURRENCY", "8"))
    base = f"http://127.0.0.1:{h.fake_port}"
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30) as client:
        async def one(i):
            async with limit:
                if args.upstream == "openai":
                    body = {**_params(args, i), "model": bodies.REMOTE["openai"]}
                    await client.post(f"{base}/v1/chat/completions", json=body,
                                      headers={"authorization": f"Bearer {bodies.FAKE_KEY}"})
                else:
                    body = {**_params(args, i), "model": bodies.REMOTE["anthropic"]}
                    await client.post(f"{base}/v1/messages", json=body, headers={
                        "x-api-key": bodies.FAKE_KEY, "anthropic-version": "2023-06-01"})

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(args.items)))
        return args.items / (time.monotonic() - started)


def _print(result: dict, args) -> None:
    print(f"batch of {args.items} items, Anthropic Message Batches in, {args.upstream} upstream, one worker "
          f"(concurrency 1), item by item")
    print(f"  counts            {result['counts']}")
    print(f"  items/s           {result['items_per_s']:.1f}   ({result['seconds']:.1f} s, created -> ended)")
    print(f"  worker CPU/item   {result['cpu_ms_per_item']:.2f} ms")
    print(f"  direct items/s    {result['direct_items_per_s']:.1f}   (the fake alone, same concurrency)")


if __name__ == "__main__":
    sys.exit(main())
