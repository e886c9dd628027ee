"""What the request policies cost per request, measured where nothing else can blur it: the request core itself.

    REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python -m bench.policy_cost [--n 2000] [--rounds 6] [--concurrency 32]

The full benchmark (`python -m bench --policies`) measures the same thing through daphne, but on a shared
2-core machine its run-to-run noise (±0.3 ms per request) is larger than the policy layer's budget (150 µs).
Here one process runs `proxy.core.run` directly (no HTTP server; the fake upstream is a separate process on the
other core) for two keys: one with no limits, one with RPM and TPM limits on a project with a monthly budget
(--everything adds a concurrency cap and the key's own monthly and daily budgets). Rounds alternate between the keys; the figure is this process's CPU time
(process_time: user + system, all threads) per request, median over rounds, and the difference between the keys
is what admit + settle (with REDIS_URL set: two Redis round trips) add.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time

from .harness import ROOT, Harness

LIMITS = ["--rpm", "100000000", "--tpm", "2000000000"]  # plus the project's monthly budget (bench --policies)
EVERYTHING = [*LIMITS, "--max-concurrent", "100000", "--monthly-budget", "10000000", "--daily-budget", "1000000"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="requests per round")
    ap.add_argument("--rounds", type=int, default=6, help="rounds per key, alternating")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--everything", action="store_true",
                    help="the limited key also gets a concurrency cap and its own monthly and daily budgets")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one round with every limit on")
    ap.add_argument("--worker", nargs=2, metavar=("PLAIN_KEY", "LIMITED_KEY"), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    h = Harness(gateway_cpu=None, aux_cpu=1 if len(os.sched_getaffinity(0)) > 1 else None, chunks=20, keep=False,
                log=lambda *m: print(*m, file=sys.stderr))
    try:
        h.start_fake()
        h.policies = True  # project "bench" gets every limit and budget; the plain key is on another project
        h.prepare_db()
        h._manage("shell", "-c", "from accounts.models import Project; Project.objects.get_or_create(slug='plain', "
                                 "defaults={'name': 'plain'})")  # fmt: skip
        plain = h._manage("create_api_key", "plain", "--name", "plain").strip().splitlines()[-1].strip()
        limited = h._manage("create_api_key", "bench", "--name", "limited", *(EVERYTHING if args.everything else LIMITS))
        limited = limited.strip().splitlines()[-1].strip()
        pin = ["taskset", "-c", "0"] if len(os.sched_getaffinity(0)) > 1 else []  # the fake has core 1
        cmd = [*pin, sys.executable, "-m", "bench.policy_cost", "--n", str(args.n), "--rounds", str(args.rounds),
               "--concurrency", str(args.concurrency), *(["--profile"] if args.profile else []),
               "--worker", plain, limited]  # fmt: skip
        import subprocess

        return subprocess.run(cmd, env=h.env(), cwd=ROOT).returncode
    finally:
        h.close()


def worker(args) -> int:
    import django

    django.setup()
    from accounts.keys import digest, key_load
    from proxy import core
    from proxy.policies.store import redis_status

    from . import bodies

    plain, limited = (key_load(secret, digest(secret)) for secret in args.worker)
    body = bodies.openai_small(bodies.ALIAS["openai"], stream=False, include_usage=False)
    results: dict[str, list[float]] = {"no limits": [], "limits and budget": []}

    async def round_for(key) -> float:
        semaphore = asyncio.Semaphore(args.concurrency)

        async def one():
            async with semaphore:
                result = await core.run(key, "openai", dict(body))
                assert result.status == 200

        started = time.process_time()
        await asyncio.gather(*(one() for _ in range(args.n)))
        return (time.process_time() - started) / args.n * 1e6

    async def run_all():
        for key in (plain, limited):  # warm-up: connections, snapshot, budget seeding
            await round_for(key)
        for _ in range(args.rounds):
            results["no limits"].append(await round_for(plain))
            results["limits and budget"].append(await round_for(limited))
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            await round_for(limited)
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(r"policies|breaker|resp\.py|state\.py|metering|core\.py", 30)

    import uvloop

    uvloop.run(run_all())
    base = statistics.median(results["no limits"])
    print(f"request core, {args.n} requests x {args.rounds} rounds per key, c={args.concurrency}, "
          f"policy store: {redis_status()}")  # fmt: skip
    for label, values in results.items():
        med = statistics.median(values)
        print(f"  {label:<24} {med:7.0f} µs CPU per request (rounds: {', '.join(f'{v:.0f}' for v in values)})"
              f"{'' if med == base else f'   +{med - base:.0f} µs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
