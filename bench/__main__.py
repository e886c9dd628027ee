"""python -m bench — what Gatehouse adds over calling the same upstream directly. See bench/README.md.

    python -m bench                      full run: 4 paths x {non-stream, stream} x {small, large} x c={1,8,64},
                                         3 runs of 3 s per point, uvicorn comparison, 10-minute soak
    python -m bench --smoke              CI: a few seconds, no timings asserted; exit 1 on errors or missing
                                         ledger rows
    python -m bench --profile o2a:stream:small:64 --duration 10     cProfile of the gateway on one point
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import statistics
import sys
import time
from pathlib import Path

from . import bodies, loadgen, report
from .harness import Harness, machine_busy_seconds, proc_cpu_seconds, proc_mem_kb

ROOT = Path(__file__).resolve().parent.parent
MODES = {"nonstream": False, "stream": True}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="CI smoke: 2 paths, c=1,8, small body, short points, no soak")
    ap.add_argument("--policies", action="store_true",
                    help="the bench key and project get every limit and budget (far above what the run reaches); "
                         "with REDIS_URL set they are checked in Redis")
    ap.add_argument("--optimize", action="store_true",
                    help="the bench project gets every token-reduction layer (proxy/optimize; no response cache, "
                         "no smart routing): what they cost per request on the whole path")
    ap.add_argument("--server", default="daphne", choices=["daphne", "uvicorn"], help="server for the full matrix")
    ap.add_argument("--compare-server", default=None,
                    help="also run the non-stream small-body points on this server ('none' to skip; "
                         "default: the other of daphne/uvicorn, none with --smoke)")
    ap.add_argument("--duration", type=float, default=None, help="measured seconds per point (default 3, smoke 0.3)")
    ap.add_argument("--warmup", type=float, default=None, help="unmeasured seconds before each point (default 0.5)")
    ap.add_argument("--runs", type=int, default=None, help="runs of the whole matrix; figures are medians (default 3)")
    ap.add_argument("--soak-seconds", type=float, default=None, help="soak at c=16 (default 600; 0 = none)")
    ap.add_argument("--soak-concurrency", type=int, default=16)
    ap.add_argument("--paths", default=None, help="comma list of a2o,a2a,o2a,o2o,r2o (default all; smoke a2o,o2a)")
    ap.add_argument("--modes", default="nonstream,stream")
    ap.add_argument("--bodies", default=None, help="small,large (default both; smoke small)")
    ap.add_argument("--concurrency", default=None, help="comma list (default 1,8,64; smoke 1,8)")
    ap.add_argument("--chunks", type=int, default=20, help="stream chunks the fake upstream sends")
    ap.add_argument("--no-direct", action="store_true", help="skip the direct-to-fake baseline")
    ap.add_argument("--gateway-cpu", type=int, default=0, help="core for the gateway (taskset -c)")
    ap.add_argument("--aux-cpu", type=int, default=1, help="core for the load generator and the fake upstream")
    ap.add_argument("--daphne-access-log", action="store_true", help="keep daphne's access log on (to a file)")
    ap.add_argument("--profile", metavar="PATH:MODE:BODY:C", default=None,
                    help="profile the gateway (cProfile, event-loop thread) on one point; writes "
                         "bench/results/profile-*.txt")
    ap.add_argument("--out", default=None, help="markdown report (default bench/results/latest.md; smoke: "
                                                "bench/results/smoke.md)")
    ap.add_argument("--app", default="gateway_site.asgi:application",
                    help="ASGI application to serve (A/B experiments; the module must be importable)")
    ap.add_argument("--render", metavar="JSON", default=None,
                    help="only re-render the markdown from a run's raw results (bench/results/latest.json)")
    ap.add_argument("--wait-lock", type=float, default=0, metavar="S",
                    help="wait up to S seconds for another benchmark to finish (default: exit 2 at once)")
    ap.add_argument("--no-lock", action="store_true",
                    help="run even if another benchmark holds /tmp/gatehouse-bench.lock (figures will be polluted)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    a = ap.parse_args(argv)
    smoke = a.smoke
    a.duration = a.duration if a.duration is not None else (0.3 if smoke else 3.0)
    a.warmup = a.warmup if a.warmup is not None else (0.1 if smoke else 0.5)
    a.runs = a.runs if a.runs is not None else (1 if smoke or a.profile else 3)
    a.soak_seconds = a.soak_seconds if a.soak_seconds is not None else (0 if smoke or a.profile else 600)
    a.paths = (a.paths or ("a2o,o2a" if smoke else ",".join(bodies.PATHS))).split(",")
    a.modes = a.modes.split(",")
    a.bodies = (a.bodies or ("small" if smoke else "small,large")).split(",")
    a.concurrency = [int(c) for c in (a.concurrency or ("1,8" if smoke else "1,8,64")).split(",")]
    if a.compare_server is None:
        a.compare_server = "none" if (smoke or a.profile) else ("uvicorn" if a.server == "daphne" else "daphne")
    a.out = a.out or str(ROOT / "bench" / "results" / ("smoke.md" if smoke else "latest.md"))
    for p in a.paths:
        if p not in bodies.PATHS:
            ap.error(f"unknown path {p!r} (expected one of {', '.join(bodies.PATHS)})")
    for m in a.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r} (expected nonstream, stream)")
    for b in a.bodies:
        if b not in ("small", "large"):
            ap.error(f"unknown body {b!r} (expected small, large)")
    if a.profile:
        try:
            path, mode, body, c = a.profile.split(":")
            assert path in bodies.PATHS and mode in MODES and body in ("small", "large")
            a.profile = (path, mode, body, int(c))
        except (ValueError, AssertionError):
            ap.error("--profile takes PATH:MODE:BODY:C, e.g. o2a:stream:small:64")
    return a


class Bench:
    def __init__(self, args) -> None:
        self.a = args
        self.h: Harness | None = None
        self.loop = loadgen.new_loop()
        asyncio.set_event_loop(self.loop)
        self.gateway_sent = 0  # every request sent to a gateway: the ledger must have as many new rows
        self.errors: list[str] = []
        self.results: dict = {}  # (server, path, mode, body, c) -> list of per-run dicts
        self.direct: dict = {}  # (server, run, upstream_api, mode, body, c) -> per-run dict

    def log(self, *msg) -> None:
        print(*msg, file=sys.stderr, flush=True)

    # --- one measured point -------------------------------------------------------------------------------
    def sampler(self, gateway: bool):
        h = self.h
        gpid = h.gateway_pid if gateway and h.gateway else None
        fpid = h.fake_pid

        def sample():
            now = time.perf_counter()
            s = {"t": now, "fake_cpu": proc_cpu_seconds(fpid), "busy": machine_busy_seconds()}
            if gpid:
                s["gw_cpu"] = proc_cpu_seconds(gpid)
                s.update(proc_mem_kb(gpid))
            return s
        return sample

    def measure(self, jobs, c, *, gateway: bool, label: str, duration=None, on_window=None) -> dict:
        a = self.a
        sample = self.sampler(gateway)
        if on_window:  # profiling: signal the server at the window's start and end
            inner = sample
            marks = {"n": 0}

            def sample():
                s = inner()
                on_window(marks["n"])
                marks["n"] += 1
                return s
        r = self.loop.run_until_complete(loadgen.run_point(
            jobs, c, duration or a.duration, a.warmup, timeout=a.timeout, sampler=sample))
        if gateway:
            self.gateway_sent += r.sent_total
        s0, s1 = r.samples["start"], r.samples["end"]
        wall = s1["t"] - s0["t"]
        out = {
            "rps": r.rps, "ok": r.ok, "errors": r.errors, "sent": r.sent_total, "window": r.window,
            "p50": loadgen.percentile(r.latencies, 0.5) * 1e3,
            "p90": loadgen.percentile(r.latencies, 0.9) * 1e3,
            "p99": loadgen.percentile(r.latencies, 0.99) * 1e3,
            "ttfb50": loadgen.percentile(r.ttfbs, 0.5) * 1e3,
            "ttfb99": loadgen.percentile(r.ttfbs, 0.99) * 1e3,
            "fake_cpu_pct": 100 * (s1["fake_cpu"] - s0["fake_cpu"]) / wall,
            "fake_cpu_ms_per_req": 1e3 * (s1["fake_cpu"] - s0["fake_cpu"]) / max(1, r.ok),
            "lg_cpu_pct": 100 * r.loadgen_cpu / wall,
        }
        # CPU used by anything else on the machine (other jobs, the kernel outside our processes): a noisy
        # neighbour shows here, and makes latency and req/s (not CPU per request) unreliable.
        ours = (s1["fake_cpu"] - s0["fake_cpu"]) + r.loadgen_cpu + ((s1["gw_cpu"] - s0["gw_cpu"]) if gateway else 0)
        out["other_cpu_pct"] = max(0.0, 100 * ((s1["busy"] - s0["busy"]) - ours) / wall)
        if gateway:
            out["gw_cpu_ms_per_req"] = 1e3 * (s1["gw_cpu"] - s0["gw_cpu"]) / max(1, r.requests)
            out["gw_cpu_pct"] = 100 * (s1["gw_cpu"] - s0["gw_cpu"]) / wall
            out["rss_mb"] = s1["VmRSS"] / 1024
            out["hwm_mb"] = s1["VmHWM"] / 1024
        if r.errors:
            for name, e in r.error_samples:
                msg = f"{label} [{name}]: {e}"
                self.errors.append(msg)
                self.log("  ERROR", msg[:400])
        return out

    def jobs(self, path, mode, body, *, direct: bool) -> list:
        port = self.h.fake_port if direct else self.h.gateway_port
        key = bodies.FAKE_KEY if direct else self.h.key
        req, marker = bodies.request_for(path, body, MODES[mode], direct=direct, host="127.0.0.1", port=port, key=key)
        return [loadgen.Job("127.0.0.1", port, req, marker, f"{'direct' if direct else 'gateway'}:{path}:{mode}:{body}")]

    # --- phases -------------------------------------------------------------------------------------------
    def sanity(self, server: str) -> bool:
        """One request per path x mode x body through the gateway before any load; stop early if broken."""
        ok = True
        for path in self.a.paths:
            for mode in self.a.modes:
                for body in self.a.bodies:
                    jobs = self.jobs(path, mode, body, direct=False)
                    r = self.loop.run_until_complete(loadgen.run_point(jobs, 1, 5.0, 0.0, timeout=self.a.timeout,
                                                                       max_requests=1))
                    self.gateway_sent += r.sent_total
                    if r.errors or not r.ok:
                        ok = False
                        for name, e in r.error_samples or [(jobs[0].name, "no response")]:
                            msg = f"sanity {server} [{name}]: {e}"
                            self.errors.append(msg)
                            self.log("  ERROR", msg[:600])
        return ok

    def matrix(self, server: str, points: list, run: int) -> None:
        a = self.a
        for (path, mode, body, c) in points:
            upstream = bodies.PATHS[path][1]
            dkey = (server, run, upstream, mode, body, c)
            if not a.no_direct and dkey not in self.direct:
                self.direct[dkey] = self.measure(self.jobs(path, mode, body, direct=True), c, gateway=False,
                                                 label=f"direct {upstream} {mode} {body} c={c}")
            g = self.measure(self.jobs(path, mode, body, direct=False), c, gateway=True,
                             label=f"{server} {path} {mode} {body} c={c}")
            d = self.direct.get(dkey)
            if d:
                for k in ("rps", "p50", "p90", "p99", "ttfb50", "ttfb99"):
                    g["d_" + k] = g[k] - d[k]
                g["direct"] = d
            self.results.setdefault((server, path, mode, body, c), []).append(g)
            self.checkpoint()
            self.log(f"  run {run + 1} {server:7} {path} {mode:9} {body:5} c={c:<3} "
                     f"{g['rps']:7.0f} req/s  p50 {g['p50']:6.2f} ms"
                     + (f" (+{g['d_p50']:.2f})  direct {d['rps']:6.0f} req/s" if d else "")
                     + f"  gw CPU {g['gw_cpu_ms_per_req']:.2f} ms/req  err {g['errors']}")

    def soak(self, server: str) -> dict:
        a = self.a
        jobs = []
        for path in bodies.PATHS:
            for mode in MODES:
                for body in ("small", "large"):
                    jobs += self.jobs(path, mode, body, direct=False)
        gpid = self.h.gateway_pid
        series = []
        tick = min(10.0, max(1.0, a.soak_seconds / 20))

        def on_tick(elapsed, res):
            m = proc_mem_kb(gpid)
            series.append((round(elapsed, 1), m["VmRSS"] / 1024, res.ok, res.errors))
            self.log(f"  soak {elapsed:6.0f}s  RSS {m['VmRSS'] / 1024:7.1f} MB  ok {res.ok}  errors {res.errors}")

        def sample():
            s = {"t": time.perf_counter(), "gw_cpu": proc_cpu_seconds(gpid), "fake_cpu": proc_cpu_seconds(self.h.fake_pid)}
            s.update(proc_mem_kb(gpid))
            return s

        self.log(f"soak: {a.soak_seconds:.0f} s at c={a.soak_concurrency} on {server}, "
                 f"mix of {len(jobs)} kinds (4 paths x 2 modes x 2 bodies)")
        r = self.loop.run_until_complete(loadgen.run_point(
            jobs, a.soak_concurrency, a.soak_seconds, 5.0, timeout=a.timeout, sampler=sample,
            on_tick=on_tick, tick_every=tick))
        self.gateway_sent += r.sent_total
        s0, s1 = r.samples["start"], r.samples["end"]
        for name, e in r.error_samples:
            self.errors.append(f"soak [{name}]: {e}")
        return {"seconds": r.window, "concurrency": a.soak_concurrency, "requests": r.requests, "ok": r.ok,
                "errors": r.errors, "rps": r.rps, "rss_start_mb": s0["VmRSS"] / 1024, "rss_end_mb": s1["VmRSS"] / 1024,
                "hwm_mb": s1["VmHWM"] / 1024, "series": series,
                "gw_cpu_ms_per_req": 1e3 * (s1["gw_cpu"] - s0["gw_cpu"]) / max(1, r.requests),
                "p50": loadgen.percentile(r.latencies, 0.5) * 1e3, "p99": loadgen.percentile(r.latencies, 0.99) * 1e3}

    def profile(self) -> int:
        import pstats

        a = self.a
        path, mode, body, c = a.profile
        name = f"profile-{a.server}-{path}-{mode}-{body}-c{c}"
        out = ROOT / "bench" / "results"
        pstats_path = self.h.dir / f"{name}.pstats"
        self.h.start_gateway(a.server, access_log=a.daphne_access_log, profile=pstats_path)
        import signal

        pid = self.h.gateway_pid
        ok = self.sanity(a.server)
        g = self.measure(self.jobs(path, mode, body, direct=False), c, gateway=True, label=name,
                         on_window=lambda n: os.kill(pid, signal.SIGUSR1 if n == 0 else signal.SIGUSR2))
        time.sleep(1.0)  # the dump happens in the server's main thread
        self.h.stop_gateway()
        if not pstats_path.exists():
            self.log("bench: the profile was not written")
            return 1
        text = report.profile_text(pstats.Stats(str(pstats_path)), g, a, name)
        (out / f"{name}.txt").write_text(text)
        self.log(text[:6000])
        self.log(f"written {out / (name + '.txt')}")
        return 0 if ok and not g["errors"] else 1

    # --- the run ------------------------------------------------------------------------------------------
    def run(self) -> int:
        a = self.a
        cores = sorted(os.sched_getaffinity(0))
        if a.gateway_cpu not in cores or a.aux_cpu not in cores or a.gateway_cpu == a.aux_cpu:
            self.log(f"bench: cores {cores} do not allow gateway on {a.gateway_cpu} and aux on {a.aux_cpu}; "
                     "running unpinned")
            gw_cpu = aux_cpu = None
        else:
            gw_cpu, aux_cpu = a.gateway_cpu, a.aux_cpu
            os.sched_setaffinity(0, {aux_cpu})  # this process is the load generator
        self.h = Harness(python=sys.executable, gateway_cpu=gw_cpu, aux_cpu=aux_cpu, chunks=a.chunks, keep=a.keep,
                         log=self.log)
        self.h.app = a.app
        self.h.policies = a.policies
        self.h.optimize = a.optimize
        started = time.time()
        try:
            self.h.start_fake()
            self.h.prepare_db()
            self.log(f"bench: data dir {self.h.dir}; DB {self.h.database_url.split('@')[-1]}; "
                     f"setup via {self.h.setup_via}; fake upstream on :{self.h.fake_port}")
            self.db_kind = ("SQLite (temp dir)" if self.h.database_url.startswith("sqlite")
                            else self.h.database_url.split("://")[0] + " ($DATABASE_URL)")
            self.setup_via = self.h.setup_via
            before = self.h.usage_count()
            if a.profile:
                rc = self.profile()
                return rc
            servers = [(a.server, True)]
            if a.compare_server and a.compare_server != "none":
                servers.append((a.compare_server, False))
            self.soak_result = None
            self.server_info = {}
            for server, primary in servers:
                server_before, sent_before = self.h.usage_count(), self.gateway_sent
                self.h.start_gateway(server, access_log=a.daphne_access_log)
                rss0 = proc_mem_kb(self.h.gateway_pid)
                self.log(f"{server}: gateway on :{self.h.gateway_port} (pid {self.h.gateway_pid}, "
                         f"RSS {rss0['VmRSS'] / 1024:.1f} MB)")
                if not self.sanity(server):
                    self.log(f"bench: {server} failed the sanity requests; measuring anyway")
                points = [(p, m, b, c) for m in a.modes for b in a.bodies for p in a.paths for c in a.concurrency]
                if not primary:
                    points = [(p, "nonstream", "small", c) for p in a.paths for c in a.concurrency]
                for run in range(a.runs):
                    self.matrix(server, points, run)
                if primary and a.soak_seconds > 0:
                    self.soak_result = self.soak(server)
                hwm = proc_mem_kb(self.h.gateway_pid)
                code = self.h.stop_gateway()
                self.server_info[server] = {"rss_start_mb": rss0["VmRSS"] / 1024, "hwm_mb": hwm["VmHWM"] / 1024,
                                            "exit": code}
                if code not in (0, None, -15):
                    self.log(f"bench: {server} exited with {code}:\n{self.h.gateway_log_tail()}")
                expected = self.gateway_sent - sent_before
                found = self._count_settled(server_before, expected) - server_before
                self.server_info[server]["ledger"] = {"expected": expected, "found": found}
                if found < expected:
                    self.log(f"bench: {server}: ledger has {found} new rows for {expected} requests "
                             f"({expected - found} missing; gateway exit code {code})")
                tail = self.h.gateway_log_tail(4000)
                if tail.strip():
                    self.server_info[server]["log_tail"] = tail
            after = self._count_settled(before, self.gateway_sent)
            self.ledger = {"before": before, "after": after, "expected": self.gateway_sent, "found": after - before}
            self.fake_stats = self.h.fake_stats()
            self.elapsed = time.time() - started
            self.finished = time.strftime("%Y-%m-%d %H:%M:%S %Z")
            self.checkpoint(final=True)
            md = report.render(self)
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(md)
            self.log(f"written {a.out}")
            text = report.summary(self)
            print(text)
            if not a.smoke and a.out == str(ROOT / "bench" / "results" / "latest.md"):
                (ROOT / "bench" / "results" / "summary.md").write_text(text + "\n")
            bad = []
            if self.errors:
                bad.append(f"{len(self.errors)} error samples (requests failed)")
            if self.ledger["found"] < self.ledger["expected"]:
                bad.append(f"ledger: expected {self.ledger['expected']} new UsageRecord rows, found {self.ledger['found']}")
            for msg in bad:
                self.log("bench: FAIL:", msg)
            return 1 if bad else 0
        finally:
            self.h.close()

    def checkpoint(self, final: bool = False) -> None:
        """Raw results next to the report (<out>.json), rewritten after every point: a run that is stopped
        half-way keeps what it measured, and `--render` rebuilds the markdown from it."""
        a = self.a
        data = {
            "complete": final, "argv": sys.argv[1:], "commit": report._git_rev(),
            "args": {k: getattr(a, k) for k in ("server", "paths", "modes", "bodies", "concurrency", "warmup",
                                                "duration", "runs", "chunks", "gateway_cpu", "aux_cpu", "smoke")},
            "db_kind": getattr(self, "db_kind", ""), "setup_via": getattr(self, "setup_via", ""),
            "results": {"|".join(map(str, k)): v for k, v in self.results.items()},
            "soak_result": getattr(self, "soak_result", None), "server_info": getattr(self, "server_info", {}),
            "fake_stats": getattr(self, "fake_stats", {}), "ledger": getattr(self, "ledger", None),
            "errors": self.errors, "elapsed": getattr(self, "elapsed", 0.0), "finished": getattr(self, "finished", None),
        }
        path = Path(a.out).with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        tmp.replace(path)

    def _count_settled(self, before: int, expected: int) -> int:
        """The gateway drained its ledger queue at exit; re-count briefly in case a writer was still committing."""
        deadline = time.monotonic() + 10
        n = self.h.usage_count()
        while n - before < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            n = self.h.usage_count()
        return n


def median(values):
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def render_only(args) -> int:
    """--render: the markdown again from a run's raw results."""
    from types import SimpleNamespace

    data = json.loads(Path(args.render).read_text())
    b = SimpleNamespace(**{k: v for k, v in data.items() if k not in ("args", "results")})
    b.a = SimpleNamespace(**data["args"])
    b.results = {}
    for k, v in data["results"].items():
        server, path, mode, body, c = k.split("|")
        b.results[(server, path, mode, body, int(c))] = v
    b.soak_result = data.get("soak_result")
    b.ledger = data.get("ledger") or {"found": 0, "expected": 0}
    out = Path(args.out if "--out" in sys.argv else Path(args.render).with_suffix(".md"))
    out.write_text(report.render(b))
    print(report.summary(b))
    print(f"written {out}" + ("" if data.get("complete") else " (from an incomplete run)"), file=sys.stderr)
    return 0


LOCK = Path("/tmp/gatehouse-bench.lock")


SUBCOMMANDS = {  # python -m bench <name> [options]: the benchmarks that are not the HTTP matrix
    "admin-pages": "bench.admin_pages",  # admin page server times at 1M / 5M ledger rows
    "policy-cost": "bench.policy_cost",  # CPU the request policies add, in process
    "optimize-cost": "bench.optimize_cost",  # CPU the cost-optimization layers add on the 76 KB body, in process
    "policy-state": "bench.policy_state",  # the state store's admit + settle alone
    "ledger-spool": "bench.ledger_spool",  # CPU per request of the ledger's durable spool, and of its replay
    "batches": "bench.batches",  # batch items/s through one Celery worker, and its CPU per item
    "codex-ws": "bench.codex_ws",  # a recorded Codex session over the Responses WebSocket vs HTTP/SSE
    "workers": "bench.workers",  # GATEWAY_WORKERS=1 vs 2: req/s and CPU per request through gateway_site.server
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        sys.argv = [f"python -m bench {argv[0]}", *argv[1:]]
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:]) or 0
    args = parse_args(argv)
    if args.render:
        return render_only(args)
    # One benchmark at a time on a machine: two would share the cores and pollute each other's figures.
    lock = open(LOCK, "a+")
    deadline = time.monotonic() + args.wait_lock
    try:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        if not args.no_lock:
            print(f"bench: another benchmark is running ({holder}); wait for it, or pass --no-lock", file=sys.stderr)
            return 2
    else:
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}: python -m bench {' '.join(sys.argv[1:])}")
        lock.flush()
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
