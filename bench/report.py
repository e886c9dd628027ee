"""Markdown report (bench/results/latest.md), the README summary, and the profile digest."""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import bodies

ROOT = Path(__file__).resolve().parent.parent

KEYS = ("rps", "p50", "p90", "p99", "ttfb50", "ttfb99", "gw_cpu_ms_per_req", "gw_cpu_pct", "rss_mb", "hwm_mb",
        "fake_cpu_pct", "fake_cpu_ms_per_req", "lg_cpu_pct", "other_cpu_pct", "d_rps", "d_p50", "d_p90", "d_p99", "d_ttfb50",
        "d_ttfb99")

# (id, description, threshold, unit, "ge"|"le")
TARGETS = [
    ("rps_ns", "Non-stream, small body, c=64: req/s", 1000, "req/s", "ge"),
    ("lat_ns", "Non-stream, small body, c=1: added p50 latency", 1.5, "ms", "le"),
    ("rps_s", "Stream (20 chunks), small body, c=64: req/s", 500, "req/s", "ge"),
    ("ttfb_s", "Stream (20 chunks), small body, c=1: added TTFB p50", 2.0, "ms", "le"),
    ("lat_large", "Claude Code-sized body, c=1: added p50 latency", 3.0, "ms", "le"),
    ("cpu_ns", "Gateway CPU per non-streamed request (small body, c=64)", 1.0, "ms", "le"),
]


def _median(values):
    values = [v for v in values if v is not None and v == v]
    return statistics.median(values) if values else float("nan")


def aggregate(runs: list[dict]) -> dict:
    out = {k: _median([r.get(k) for r in runs]) for k in KEYS}
    out["direct_rps"] = _median([r["direct"]["rps"] for r in runs if "direct" in r])
    out["direct_fake_cpu_ms_per_req"] = _median([r["direct"]["fake_cpu_ms_per_req"] for r in runs if "direct" in r])
    out["errors"] = sum(r["errors"] for r in runs)
    out["ok"] = sum(r["ok"] for r in runs)
    out["runs"] = len(runs)
    out["hwm_mb"] = max((r.get("hwm_mb", 0) for r in runs), default=float("nan"))
    return out


def f(v, nd=2, plus=False) -> str:
    if v is None or v != v:
        return "—"
    s = f"{v:+.{nd}f}" if plus else f"{v:.{nd}f}"
    return s


def rps(v) -> str:
    return "—" if v is None or v != v else f"{v:,.0f}"


def _met(value, threshold, op) -> str:
    if value is None or value != value:
        return "not measured"
    ok = value >= threshold if op == "ge" else value <= threshold
    return "**met**" if ok else "**NOT met**"


def target_rows(agg: dict, server: str, paths) -> list[tuple]:
    """-> [(target description, path, figure, threshold text, verdict)]"""
    rows = []
    for tid, desc, thr, unit, op in TARGETS:
        for path in paths:
            if tid == "rps_ns":
                cells = [(agg.get((server, path, "nonstream", "small", 64)), "rps", "")]
            elif tid == "lat_ns":
                cells = [(agg.get((server, path, "nonstream", "small", 1)), "d_p50", "")]
            elif tid == "rps_s":
                cells = [(agg.get((server, path, "stream", "small", 64)), "rps", "")]
            elif tid == "ttfb_s":
                cells = [(agg.get((server, path, "stream", "small", 1)), "d_ttfb50", "")]
            elif tid == "lat_large":
                cells = [(agg.get((server, path, "nonstream", "large", 1)), "d_p50", " (non-stream)"),
                         (agg.get((server, path, "stream", "large", 1)), "d_p50", " (stream, whole response)")]
            else:
                cells = [(agg.get((server, path, "nonstream", "small", 64)), "gw_cpu_ms_per_req", "")]
            for a, key, note in cells:
                if a is None:
                    continue
                v = a[key]
                shown = rps(v) if unit == "req/s" else f(v, 2, plus=key.startswith("d_"))
                rows.append((desc + note, path, f"{shown} {unit}", f"{'≥' if op == 'ge' else '≤'} {thr:g} {unit}",
                             _met(v, thr, op)))
    return rows


def _machine() -> str:
    try:
        model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    except OSError:
        model = "?"
    return f"{model}; Python {platform.python_version()}; {platform.system()} {platform.release()}"


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def soak_verdict(s: dict) -> tuple[float, float, str]:
    growth = s["rss_end_mb"] - s["rss_start_mb"]
    noise = max(4.0, 0.05 * s["rss_start_mb"])
    return growth, noise, ("**met**" if growth <= noise else "**NOT met**")


def render(b) -> str:
    a = b.a
    agg = {k: aggregate(v) for k, v in b.results.items()}
    b.agg = agg
    L = []
    L.append("# Gatehouse benchmark: what the gateway adds over calling the upstream directly\n")
    argv = getattr(b, "argv", sys.argv[1:])
    L.append(f"Generated {getattr(b, 'finished', None) or time.strftime('%Y-%m-%d %H:%M:%S %Z')} by "
             f"`python -m bench{' ' + ' '.join(argv) if argv else ''}` "
             f"(commit {getattr(b, 'commit', None) or _git_rev()}, {b.elapsed / 60:.1f} min).  ")
    L.append(f"Machine: {_machine()}.  ")
    L.append(f"Gateway: `{a.server}` pinned to core {a.gateway_cpu}; fake upstream ({a.chunks} stream chunks, no "
             f"artificial latency) and this load generator pinned to core {a.aux_cpu}. DB: "
             f"{b.db_kind}; config via {b.setup_via}.  ")
    L.append(f"Each point: {a.warmup:g} s warm-up, {a.duration:g} s measured, closed loop at concurrency c; "
             f"figures are medians of {a.runs} run(s); Δ = gateway minus direct-to-fake in the same run.\n")

    # --- targets
    primary = a.server
    L.append("## Targets (gateway on one core)\n")
    L.append("| Target | Path | Measured | Target | Verdict |")
    L.append("|---|---|---:|---:|---|")
    for desc, path, val, thr, verdict in target_rows(agg, primary, a.paths):
        L.append(f"| {desc} | {path} | {val} | {thr} | {verdict} |")
    if b.soak_result:
        s = b.soak_result
        growth, noise, verdict = soak_verdict(s)
        L.append(f"| No RSS growth over the soak ({s['seconds']:.0f} s, c={s['concurrency']}) | mix | "
                 f"{s['rss_start_mb']:.1f} → {s['rss_end_mb']:.1f} MB ({growth:+.1f}) | ≤ +{noise:.1f} MB (noise) | {verdict} |")
        L.append(f"| Soak: 0 errors | mix | {s['errors']} errors / {s['ok']:,} ok | 0 | "
                 f"{'**met**' if s['errors'] == 0 else '**NOT met**'} |")
    else:
        L.append("| No RSS growth over the soak | — | not run (`--soak-seconds 0`) | — | not measured |")
    lg = b.ledger
    L.append(f"| Ledger: a UsageRecord for every gateway request | all | {lg['found']:,} found / {lg['expected']:,} expected "
             f"| equal | {'**met**' if lg['found'] == lg['expected'] else ('**NOT met**' if lg['found'] < lg['expected'] else 'extra rows (shared DB?)')} |")
    total_err = sum(v["errors"] for v in agg.values())
    L.append(f"| No request errors in the matrix | all | {total_err} | 0 | {'**met**' if total_err == 0 else '**NOT met**'} |")
    L.append("")

    # --- the matrix
    L.append(f"## Matrix ({primary})\n")
    L.append("Paths: " + "; ".join(f"`{p}` = {bodies.PATH_LABELS[p]}" for p in a.paths) + ". "
             "Bodies: small = a short chat (~0.4 KB); large = a real Claude Code first turn (~76 KB, 24 tools; OpenAI "
             "ingress: the equivalent OpenAI body).\n")
    L.append(_matrix_table(agg, primary, a))

    # --- server comparison
    others = sorted({k[0] for k in agg} - {primary})
    if others:
        L.append(f"## Server comparison (non-stream, small body)\n")
        servers = [primary, *others]
        head = "| Path | c | " + " | ".join(f"{s} req/s | {s} p50 Δ ms | {s} CPU ms/req" for s in servers) + " |"
        L.append(head)
        L.append("|---|---:|" + "---:|" * (3 * len(servers)))
        for path in a.paths:
            for c in a.concurrency:
                cells = []
                for s in servers:
                    x = agg.get((s, path, "nonstream", "small", c))
                    cells += [rps(x["rps"]), f(x["d_p50"], 2, True), f(x["gw_cpu_ms_per_req"])] if x else ["—"] * 3
                L.append(f"| {path} | {c} | " + " | ".join(cells) + " |")
        L.append("\ngranian: not installed in this environment, not measured.\n")

    # --- soak
    if b.soak_result:
        s = b.soak_result
        L.append("## Soak\n")
        L.append(f"{s['seconds']:.0f} s at c={s['concurrency']} on {primary}, each connection on one of 16 kinds "
                 f"(4 paths × stream/non-stream × small/large): {s['ok']:,} ok, {s['errors']} errors, "
                 f"{s['rps']:,.0f} req/s, p50 {s['p50']:.2f} ms, p99 {s['p99']:.2f} ms, gateway CPU "
                 f"{s['gw_cpu_ms_per_req']:.2f} ms/req. RSS {s['rss_start_mb']:.1f} MB at the start, "
                 f"{s['rss_end_mb']:.1f} MB at the end, peak (VmHWM) {s['hwm_mb']:.1f} MB.\n")
        L.append("RSS over time (s → MB): " + ", ".join(f"{t:.0f}→{m:.1f}" for t, m, _, _ in s["series"]) + "\n")

    # --- processes
    L.append("## Processes\n")
    for server, info in b.server_info.items():
        led = info.get("ledger", {})
        L.append(f"- {server}: RSS {info['rss_start_mb']:.1f} MB after start, peak (VmHWM) {info['hwm_mb']:.1f} MB; "
                 f"exit code {info['exit']} after SIGTERM; ledger {led.get('found', 0):,} new rows for "
                 f"{led.get('expected', 0):,} requests"
                 + (f" (**{led['expected'] - led['found']} missing**)" if led and led["found"] < led["expected"] else "")
                 + ".")
    fs = b.fake_stats
    L.append(f"- Fake upstream: {fs.get('total', 0):,} requests served, {fs.get('cpu_seconds', 0):.1f} CPU s in total "
             "(per-point CPU % in the matrix: `fake %`).")
    L.append("- Load generator and fake share one core: when `fake %` + `lg %` nears 100 the direct baseline (not "
             "the gateway) is what is capped; gateway req/s are then bounded by core 0, see `GW CPU %`.")
    L.append("")

    if b.errors:
        L.append("## Errors (first samples)\n")
        for e in b.errors[:20]:
            L.append(f"- `{e[:500]}`")
        L.append("")
    for server, info in b.server_info.items():
        if info.get("log_tail"):
            L.append(f"## {server} log (tail)\n")
            L.append("```\n" + info["log_tail"][-2500:] + "\n```\n")
    L.append("## Columns\n")
    L.append("See bench/README.md. req/s counts complete, correct responses in the measured window; latency is "
             "request start to last byte; TTFB is request start to first body byte; Δ is gateway minus direct "
             "(same run, same c, same body in the upstream's own format); GW CPU ms/req is the gateway process's "
             "utime+stime delta (/proc/<pid>/stat, all threads) over the window divided by requests; GW CPU % is "
             "of one core; peak RSS is VmHWM; fake % and lg % are the fake upstream's and load generator's CPU "
             "(of one core) during the gateway point; other % is every other process on the machine (of one core: "
             "200 = both cores busy elsewhere) — when it is not near 0, req/s and latency of that point are "
             "polluted, CPU ms/req much less so.\n")
    return "\n".join(L)


def _matrix_table(agg: dict, server: str, a) -> str:
    L = ["| Path | Mode | Body | c | req/s | direct req/s | p50 ms (Δ) | p90 ms (Δ) | p99 ms (Δ) | TTFB p50 ms (Δ) "
         "| GW CPU ms/req | GW CPU % | peak RSS MB | fake % | lg % | other % | errors |",
         "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode in a.modes:
        for body in a.bodies:
            for path in a.paths:
                for c in a.concurrency:
                    x = agg.get((server, path, mode, body, c))
                    if not x:
                        continue
                    ttfb = f"{f(x['ttfb50'])} ({f(x['d_ttfb50'], 2, True)})" if mode == "stream" else "—"
                    L.append(
                        f"| {path} | {mode} | {body} | {c} | {rps(x['rps'])} | {rps(x['direct_rps'])} "
                        f"| {f(x['p50'])} ({f(x['d_p50'], 2, True)}) | {f(x['p90'])} ({f(x['d_p90'], 2, True)}) "
                        f"| {f(x['p99'])} ({f(x['d_p99'], 2, True)}) | {ttfb} | {f(x['gw_cpu_ms_per_req'])} "
                        f"| {f(x['gw_cpu_pct'], 0)} | {f(x['hwm_mb'], 1)} | {f(x['fake_cpu_pct'], 0)} "
                        f"| {f(x['lg_cpu_pct'], 0)} | {f(x['other_cpu_pct'], 0)} | {x['errors']} |")
    return "\n".join(L) + "\n"


def summary(b) -> str:
    """A few lines for the README."""
    a = b.a
    agg = getattr(b, "agg", None) or {k: aggregate(v) for k, v in b.results.items()}
    s = a.server

    def span(mode, body, c, key, nd=2, plus=False, fmt=None):
        vals = [agg[(s, p, mode, body, c)][key] for p in a.paths if (s, p, mode, body, c) in agg]
        vals = [v for v in vals if v == v]
        if not vals:
            return "—"
        show = fmt or (lambda v: f(v, nd, plus))
        lo, hi = min(vals), max(vals)
        return show(lo) if show(lo) == show(hi) else f"{show(lo)} to {show(hi)}"

    rows = [f"Benchmark ({time.strftime('%Y-%m-%d')}, `python -m bench`; gateway on {s}, one core; fake upstream "
            f"and load generator on the other; ranges are over the {len(a.paths)} paths; full table in "
            "bench/results/latest.md):", ""]
    top = max(a.concurrency)
    if "nonstream" in a.modes and "small" in a.bodies:
        rows.append(f"- Non-streamed small request: {span('nonstream', 'small', top, 'rps', fmt=rps)} req/s at c={top}; "
                    f"{span('nonstream', 'small', 1, 'd_p50', plus=True)} ms added at the median at c=1; "
                    f"{span('nonstream', 'small', top, 'gw_cpu_ms_per_req')} ms gateway CPU per request.")
    if "stream" in a.modes and "small" in a.bodies:
        rows.append(f"- Streamed ({a.chunks} chunks): {span('stream', 'small', top, 'rps', fmt=rps)} req/s at c={top}; "
                    f"time to first byte {span('stream', 'small', 1, 'd_ttfb50', plus=True)} ms over direct at c=1.")
    if "large" in a.bodies and "nonstream" in a.modes:
        rows.append(f"- Claude Code-sized request (~76 KB): {span('nonstream', 'large', 1, 'd_p50', plus=True)} ms added "
                    f"at the median at c=1 (non-stream).")
    if getattr(b, "soak_result", None):
        so = b.soak_result
        growth, noise, _ = soak_verdict(so)
        rows.append(f"- Soak {so['seconds'] / 60:.0f} min at c={so['concurrency']}: {so['ok']:,} requests, "
                    f"{so['errors']} errors, RSS {so['rss_start_mb']:.0f} → {so['rss_end_mb']:.0f} MB.")
    lg = b.ledger
    rows.append(f"- Ledger: {lg['found']:,} usage records for {lg['expected']:,} gateway requests.")
    return "\n".join(rows)


# --- profile digest ---------------------------------------------------------------------------------------

AREAS = [
    ("/proxy/", "gateway: proxy"), ("/accounts/", "gateway: accounts"),
    ("/usage/", "gateway: usage"), ("/gateway_site/", "gateway: site"),
    ("/django/", "Django"), ("/ninja/", "django-ninja"), ("/pydantic", "pydantic"), ("/asgiref/", "asgiref"),
    ("/httpx_aiohttp/", "httpx-aiohttp"), ("/httpx/", "httpx"), ("/httpcore/", "httpcore"), ("/aiohttp/", "aiohttp"),
    ("/yarl/", "yarl/multidict"), ("/multidict/", "yarl/multidict"),
    ("/daphne/", "daphne"), ("/twisted/", "twisted"), ("/uvicorn/", "uvicorn"), ("/channels/", "channels"),
    ("/django_prometheus/", "prometheus"), ("/prometheus_client/", "prometheus"),
    ("/asyncio/", "asyncio"), ("/logging/", "logging"),
]


def _area(filename: str, funcname: str) -> str:
    if filename == "~":
        name = funcname.strip("<>")
        if "orjson" in name:
            return "orjson"
        if "socket" in name or "send" in name or "recv" in name:
            return "socket I/O (builtins)"
        return "builtins"
    for needle, area in AREAS:
        if needle in filename:
            return area
    return "other stdlib"


def profile_text(stats, point: dict, a, name: str) -> str:
    st = stats.stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
    total = sum(v[2] for v in st.values()) or 1e-9
    n = max(1, point["ok"])
    rows = sorted(st.items(), key=lambda kv: kv[1][2], reverse=True)
    L = [f"# {name}", "",
         f"cProfile of the gateway's event-loop thread (bench/profiled_server.py), enabled for the measured window "
         f"only. {point['ok']:,} requests, {point['rps']:,.0f} req/s under the profiler (cProfile slows Python code "
         f"~1.5-2x; use the shares, not the absolute times), gateway process CPU {point['gw_cpu_ms_per_req']:.2f} "
         f"ms/request (all threads, from /proc). Profiled thread total: {total:.2f} s = {1e3 * total / n:.2f} ms/request.",
         "", "## By area (self time)", "", "| Area | % | ms/request |", "|---|---:|---:|"]
    areas: dict[str, float] = {}
    for (fn, line, func), v in st.items():
        areas[_area(fn, func)] = areas.get(_area(fn, func), 0) + v[2]
    for area, tt in sorted(areas.items(), key=lambda kv: -kv[1]):
        L.append(f"| {area} | {100 * tt / total:.1f} | {1e3 * tt / n:.3f} |")
    L += ["", "## Top functions by self time", "", "| % self | % cumulative | calls/request* | function |",
          "|---:|---:|---:|---|"]
    for (fn, line, func), v in rows[:40]:
        L.append(f"| {100 * v[2] / total:.1f} | {100 * v[3] / total:.1f} | {v[1] / n:.1f} | `{_short(fn)}:{line}:{func}` |")
    L += ["", "\\* cProfile counts every resumption of a coroutine as a call: for `async def` functions calls/request "
          "is (awaits + 1) per request, not invocations.", ""]
    L += ["", "## Gateway code by cumulative time", "", "| % cumulative | % self | calls/request | function |",
          "|---:|---:|---:|---|"]
    own = [kv for kv in st.items() if any(p in kv[0][0] for p in ("/proxy/", "/accounts/", "/usage/", "/gateway_site/"))]
    for (fn, line, func), v in sorted(own, key=lambda kv: kv[1][3], reverse=True)[:30]:
        L.append(f"| {100 * v[3] / total:.1f} | {100 * v[2] / total:.1f} | {v[1] / n:.1f} | `{_short(fn)}:{line}:{func}` |")
    L += ["", "## Library entry points by cumulative time", "", "| % cumulative | calls/request | function |",
          "|---:|---:|---|"]
    lib = [kv for kv in st.items() if kv[0][0] != "~" and kv not in own]
    for (fn, line, func), v in sorted(lib, key=lambda kv: kv[1][3], reverse=True)[:30]:
        L.append(f"| {100 * v[3] / total:.1f} | {v[1] / n:.1f} | `{_short(fn)}:{line}:{func}` |")
    return "\n".join(L) + "\n"


def _short(fn: str) -> str:
    for marker in ("site-packages/", f"{ROOT}/", "/lib/python3."):  # ROOT: this checkout, wherever it is
        i = fn.find(marker)
        if i >= 0:
            rest = fn[i + len(marker):]
            return rest.split("/", 1)[1] if marker == "/lib/python3." else rest
    return fn
