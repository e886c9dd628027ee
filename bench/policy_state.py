"""Micro-benchmark of the policy state store: µs per admit + settle of one request with 2 windows, 1 concurrency
cap, 2 budgets and 2 breaker ids, for LocalState and RedisState.

    .venv/bin/python -m bench.policy_state [--n 3000] [--redis redis://127.0.0.1:6379/15] [--concurrency 50]

Sequential: one request at a time (the latency a request pays: two round trips for Redis). Concurrent:
--concurrency requests in flight at once on one event loop (the CPU cost per request when Redis round trips
overlap). A bare redis-py PING round trip is printed for scale. Keys go under a random prefix and are deleted.
"""

import argparse
import asyncio
import os
import time
import uuid


def _specs(i: int):
    from proxy.policies.state import Budget, Concurrency, Window

    expires = int(time.time()) + 86400
    return (
        [Window("rpm:k:1", 10**9, 1), Window("tpm:k:1", 10**12, 1500)],
        [Concurrency("conc:k:1", 10**6)],
        [Budget("budget:p:1:m:bench", 10**15, 5000, expires), Budget("budget:k:1:d:bench", 10**15, 5000, expires)],
        [101, 102],
    )


async def _one(state, i: int, specs) -> None:
    windows, concurrency, budgets, breakers = specs
    rid = f"bench-{i}"
    admission = await state.admit(rid, windows, concurrency, budgets, breakers)
    assert admission.admitted, admission
    await state.settle(rid, admission, actual_costs={"tpm:k:1": 1200},
                       budget_actuals={b.key: 4000 for b in budgets}, breaker_success=[])


async def _measure(state, n: int, concurrency: int) -> tuple[float, float]:
    specs = _specs(0)
    for b in specs[2]:
        await state.seed_budget(b.key, 0, b.expires_at)
    for i in range(200):  # warm up: connections, script cache
        await _one(state, -i - 1, specs)
    started = time.perf_counter()
    for i in range(n):
        await _one(state, i, specs)
    sequential = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for start in range(0, n, concurrency):
        await asyncio.gather(*(_one(state, n + i, specs) for i in range(start, min(n, start + concurrency))))
    concurrent = (time.perf_counter() - started) / n * 1e6
    return sequential, concurrent


async def run(n: int, url: str, concurrency: int) -> None:
    import redis.asyncio as aioredis

    from proxy.policies.state_local import LocalState
    from proxy.policies.state_redis import RedisState

    client = aioredis.Redis.from_url(url)
    await client.ping()
    started = time.perf_counter()
    for _ in range(n):
        await client.ping()
    print(f"redis-py PING round trip {(time.perf_counter() - started) / n * 1e6:.1f} µs (for scale)")
    await client.aclose()
    seq, conc = await _measure(LocalState(), n, concurrency)
    print(f"LocalState  {seq:8.1f} µs sequential  {conc:8.1f} µs/request at {concurrency} in flight")
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    state = RedisState(url, prefix=prefix, timeout=2.0)
    try:
        seq, conc = await _measure(state, n, concurrency)
        print(f"RedisState  {seq:8.1f} µs sequential  {conc:8.1f} µs/request at {concurrency} in flight")
    finally:
        await state.aclose()
        client = aioredis.Redis.from_url(url)
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--concurrency", type=int, default=50)
    options = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    import django

    django.setup()
    asyncio.run(run(options.n, options.redis, options.concurrency))
    return 0


if __name__ == "__main__":
    main()
