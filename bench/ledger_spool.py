"""Micro-benchmark of the ledger's durable path (usage/ledger.py), in isolation: CPU per request of the spool.

    .venv/bin/python -m bench ledger-spool [--n 20000] [--batch 200] [--dir /tmp/...]

Per request the request path appends two records to the spool (a snapshot when the upstream is called and the
final row), each one orjson.dumps of a LedgerRow + one os.write; the writer thread then marks the row committed
and, once per batch (a flush cycle), fsyncs the spool and truncates it. Replay (after a crash) reads each record
back into a LedgerRow. Printed: µs of CPU (process time) per request for each part, and the wall time of one
fsync. The database insert is not included: it is the same with or without the spool.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path


def _rows(n: int):
    from decimal import Decimal

    from usage.ledger_row import LedgerRow

    return [
        LedgerRow(
            request_id=f"req_{i:024d}", ingress_api="anthropic", http_status=200, outcome="ok", project_id=1,
            api_key_id=1, alias="claude-*", requested_model="claude-sonnet-4-5", provider="anthropic-main",
            account="main", remote_model="claude-sonnet-4-5", upstream_api="anthropic", stream=True,
            input_tokens=1200, output_tokens=300, cache_read_tokens=5000, cost_usd=Decimal("0.01234567"),
            latency_ms=2345, ttft_ms=456, attempts=1, user_agent="claude-cli/2.1.0 (external, cli)",
        )
        for i in range(n)
    ]


def measure(n: int, batch: int, directory: Path) -> dict:
    from usage import ledger_row, ledger_spool

    rows = _rows(n)
    spool = ledger_spool.Spool(directory)
    cpu, wall = time.process_time(), time.perf_counter()
    tokens = []
    for r in rows:  # what the request path does: a snapshot, then the final row
        spool.append(r.request_id, ledger_row.encode("s", r), final=False)
        tokens.append(spool.append(r.request_id, ledger_row.encode("f", r), final=True))
    request_cpu = time.process_time() - cpu
    request_wall = time.perf_counter() - wall
    size = sum(p.stat().st_size for p in directory.glob(f"{spool.owner}.*.spool"))

    replay_cpu = time.process_time()
    replayed = ledger_spool.read_segments(sorted(directory.glob(f"{spool.owner}.*.spool")))
    replay_cpu = time.process_time() - replay_cpu
    assert len(replayed) == n

    cpu = time.process_time()
    fsyncs = []
    for start in range(0, n, batch):  # what the writer does after each committed batch
        spool.committed(tokens[start : start + batch])
        spool._synced = False
        t = time.perf_counter()
        spool.maintain()
        fsyncs.append(time.perf_counter() - t)
    writer_cpu = time.process_time() - cpu
    spool.close()
    return {
        "n": n, "bytes_per_request": size / n, "request_cpu_us": request_cpu / n * 1e6,
        "request_wall_us": request_wall / n * 1e6, "writer_cpu_us": writer_cpu / n * 1e6,
        "replay_cpu_us": replay_cpu / n * 1e6, "fsync_ms_median": sorted(fsyncs)[len(fsyncs) // 2] * 1e3,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench ledger-spool", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--n", type=int, default=20000, help="requests")
    ap.add_argument("--batch", type=int, default=200, help="rows per writer cycle (one fsync + truncate each)")
    ap.add_argument("--dir", default=None, help="spool directory (default: a new temporary one; use the disk "
                                                "GATEWAY_DATA_DIR is on)")  # fmt: skip
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    import django

    django.setup()
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(dir=args.dir) as d:
            results.append(measure(args.n, args.batch, Path(d)))
    print(f"ledger spool, {args.n} requests x {args.runs} runs, writer batches of {args.batch}; median of runs")
    for key in ("bytes_per_request", "request_cpu_us", "request_wall_us", "writer_cpu_us", "replay_cpu_us",
                "fsync_ms_median"):  # fmt: skip
        values = sorted(r[key] for r in results)
        print(f"  {key:<20} {values[len(values) // 2]:10.2f}   (runs: {', '.join(f'{v:.2f}' for v in values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
