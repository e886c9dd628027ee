"""What the cost-optimization layers cost per request, in process, on the 76 KB Claude Code body (bench.bodies'
large body: a real first turn with 24 tools):

    .venv/bin/python -m bench optimize-cost [--n 300] [--rounds 5]

Each round runs proxy.optimize.transforms.reduce over N parsed copies of the body (the copies are made before
the clock starts: the request path parses the body once anyway) for each layer alone and for all of them, on
the pass-through path (Anthropic upstream) and the translated one, plus the response cache's key (normalize +
blake2b). The figure is CPU time per request (process_time), median over rounds. With every layer off the
request path pays one `key.optimize is None`, which no benchmark can see. The HTTP benchmark measures the whole
path with every reduction layer on: `python -m bench --optimize` (see bench/README.md).
"""

import argparse
import copy
import statistics
import time

ALL = dict(cache_breakpoints=True, stable_prefix=True, strip_boilerplate=True, dedupe_tool_results=True,
           cap_system_chars=None, cap_tool_result_chars=12_000, prune_max_tokens=40_000, diff_first=True,
           cap_tool_description_chars=500)  # fmt: skip
LAYERS = [("breakpoints", {"cache_breakpoints": True}), ("stable_prefix", {"stable_prefix": True}),
          ("tools", {"cap_tool_description_chars": 500}),
          ("boilerplate", {"strip_boilerplate": True}), ("dedupe", {"dedupe_tool_results": True}),
          ("caps", {"cap_tool_result_chars": 12_000}), ("prune", {"prune_max_tokens": 40_000}),
          ("diff_first", {"diff_first": True}), ("all", ALL)]  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench optimize-cost", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="requests per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    django.setup()
    from accounts.models import Optimization
    from proxy.optimize import cache, transforms

    from . import bodies

    body, _ = bodies.anthropic_large("gw-anthropic", True)
    print(f"body: {len(__import__('orjson').dumps(body)):,} bytes; {args.n} requests x {args.rounds} rounds\n")
    print(f"{'layers':<16}{'upstream':<12}{'CPU us/request':>16}")
    for name, values in LAYERS:
        opt = Optimization(**values)
        for upstream in ("anthropic", "openai"):
            us = _measure(args, body, lambda b: transforms.reduce(b, "anthropic", opt, upstream))
            print(f"{name:<16}{upstream:<12}{us:>16.1f}")
    body_t0 = {**body, "temperature": 0}
    us = _measure(args, body_t0, lambda b: cache.cache_key(1, "anthropic", "gw-anthropic", b, False))
    print(f"{'cache key':<16}{'-':<12}{us:>16.1f}")
    return 0


def _measure(args, body: dict, work) -> float:
    rounds = []
    for _ in range(args.rounds):
        copies = [copy.deepcopy(body) for _ in range(args.n)]
        started = time.process_time()
        for b in copies:
            work(b)
        rounds.append((time.process_time() - started) / args.n * 1e6)
    return statistics.median(rounds)


if __name__ == "__main__":
    raise SystemExit(main())
