"""GATEWAY_WORKERS=1 against 2 (or --workers): throughput and CPU per request, through bin/serve's server.

    .venv/bin/python -m bench workers [--workers 1,2] [--rounds 3] [--duration 5] [--concurrency 64]

The gateway runs as bin/serve runs it (`python -m gateway_site.server`, daphne) with GATEWAY_WORKERS set, not
pinned; the fake upstream and the load generator run on the same cores. On a 2-core machine the load generator
and the fake take a large share of the CPU, so req/s with 2 workers cannot reach twice 1 worker's here: the figure
that carries over to a machine with free cores is the gateway's CPU per request (master and workers, from
/proc), which must not grow with the worker count. Rounds alternate between the counts; figures are medians.
"""

import argparse
import statistics
import sys
from pathlib import Path

from . import bodies, loadgen
from .harness import Harness, proc_cpu_seconds


def gateway_cpu(master: int) -> float:
    """CPU seconds of the master and its workers."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return proc_cpu_seconds(master) + sum(proc_cpu_seconds(int(pid)) for pid in children)


class WorkersHarness(Harness):
    workers = 1

    def gateway_argv(self, server, port, *, access_log=False, profile=None):
        return [self.python, "-m", "gateway_site.server", "-b", "127.0.0.1", "-p", str(port), "-v", "0", self.app]

    def env(self) -> dict:
        return {**super().env(), "GATEWAY_WORKERS": str(self.workers)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="1,2", help="comma list of worker counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per point")
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    h = WorkersHarness(gateway_cpu=None, aux_cpu=None, chunks=20, keep=False, log=lambda *m: print(*m, file=sys.stderr))
    loop = loadgen.new_loop()
    results: dict[int, list[tuple[float, float, float]]] = {n: [] for n in counts}
    try:
        h.start_fake()
        key = h.prepare_db()
        for _ in range(args.rounds):
            for n in counts:
                h.workers = n
                port = h.start_gateway("daphne")
                request, marker = bodies.request_for("a2o", "small", False, direct=False, host="127.0.0.1",
                                                     port=port, key=key)  # fmt: skip
                job = loadgen.Job("127.0.0.1", port, request, marker, f"workers={n}")
                state = {}

                def sample(master=h.gateway_pid):
                    state.setdefault("cpu", []).append(gateway_cpu(master))
                    return {}

                r = loop.run_until_complete(loadgen.run_point([job], args.concurrency, args.duration, 1.0,
                                                              sampler=sample))  # fmt: skip
                cpu = state["cpu"][-1] - state["cpu"][0]
                results[n].append((r.rps, 1e3 * cpu / max(1, r.requests), loadgen.percentile(r.latencies, 0.99) * 1e3))
                h.log(f"workers={n}: {r.rps:.0f} req/s, {results[n][-1][1]:.2f} ms CPU/req, errors {r.errors}")
                h.stop_gateway()
    finally:
        h.close()
    print(f"a2o small non-stream, c={args.concurrency}, {args.duration:.0f} s x {args.rounds} rounds per count, "
          f"daphne through gateway_site.server, not pinned (load generator and fake on the same cores)")
    base = statistics.median(r[0] for r in results[counts[0]])
    for n in counts:
        rps = statistics.median(r[0] for r in results[n])
        cpu = statistics.median(r[1] for r in results[n])
        p99 = statistics.median(r[2] for r in results[n])
        print(f"  GATEWAY_WORKERS={n}: {rps:6.0f} req/s ({rps / base:.2f}x)  {cpu:.2f} ms gateway CPU per request  "
              f"p99 {p99:.1f} ms  (rounds: {', '.join(f'{r[0]:.0f}' for r in results[n])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
