"""Processes of a benchmark run: the fake upstream and the gateway (each pinned with taskset), a throw-away data
directory, the database (SQLite in that directory unless $DATABASE_URL is set), migrations, config and API key,
and /proc readings (CPU time, RSS) of the processes under test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from . import bodies

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
FAKE_KEY_ENV = "BENCH_FAKE_UPSTREAM_KEY"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5), counted after "(comm) "


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: user nice system irq softirq steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def proc_mem_kb(pid: int) -> dict:
    """VmRSS and VmHWM (peak RSS) in kB, from /proc/<pid>/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


def taskset(cpu: int | None, argv: list[str]) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


class Harness:
    def __init__(self, *, python: str = sys.executable, gateway_cpu: int | None = 0, aux_cpu: int | None = 1,
                 chunks: int = 20, keep: bool = False, log=print) -> None:
        self.python = python
        self.gateway_cpu = gateway_cpu
        self.aux_cpu = aux_cpu
        self.chunks = chunks
        self.keep = keep
        self.log = log
        self.dir = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
        self.database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{self.dir / 'gatehouse.sqlite3'}"
        self.fake = None
        self.fake_port = 0
        self.gateway: subprocess.Popen | None = None
        self.gateway_port = 0
        self.gateway_log: Path | None = None
        self.key = ""

    # --- environment ----------------------------------------------------------------------------------------
    def env(self) -> dict:
        env = dict(os.environ)
        for name in ("GATEWAY_CONFIG", "DJANGO_SETTINGS_MODULE"):
            env.pop(name, None)
        env.update({
            "DJANGO_SETTINGS_MODULE": "gateway_site.settings",
            "GATEWAY_DATA_DIR": str(self.dir),
            "DATABASE_URL": self.database_url,
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            FAKE_KEY_ENV: bodies.FAKE_KEY,
        })
        # REDIS_URL only if the caller's environment has it (kept by the copy above).
        return env

    def _manage(self, *args: str, timeout: float = 120) -> str:
        p = subprocess.run([self.python, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True,
                           text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p.stdout

    def _setup_db(self, *args: str, timeout: float = 60) -> str:
        p = subprocess.run([self.python, "-m", "bench.setup_db", *args], cwd=ROOT, env=self.env(),
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"bench.setup_db {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p.stdout.strip().splitlines()[-1]

    # --- fake upstream --------------------------------------------------------------------------------------
    def start_fake(self) -> int:
        from tests.fakes.upstream.server import FakeUpstreamProcess

        self.fake = FakeUpstreamProcess(chunks=self.chunks, key=bodies.FAKE_KEY, python=self.python, cpu=self.aux_cpu)
        self.fake_port = self.fake.start()
        return self.fake_port

    @property
    def fake_pid(self) -> int:
        return self.fake.proc.pid

    def fake_stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.fake_port}/_fake/stats", timeout=5) as r:
            return json.loads(r.read())

    # --- database -------------------------------------------------------------------------------------------
    def config_yaml(self) -> str:
        base = f"http://127.0.0.1:{self.fake_port}"
        return f"""# written by bench/harness.py for one benchmark run
providers:
  - name: bench-fake-anthropic
    kind: anthropic
    base_url: {base}
    api_key_env: {FAKE_KEY_ENV}
  - name: bench-fake-openai
    kind: openai
    base_url: {base}/v1
    api_key_env: {FAKE_KEY_ENV}
models:
  - alias: {bodies.ALIAS['anthropic']}
    targets: [{{provider: bench-fake-anthropic, model: {bodies.REMOTE['anthropic']}}}]
  - alias: {bodies.ALIAS['openai']}
    targets: [{{provider: bench-fake-openai, model: {bodies.REMOTE['openai']}}}]
prices:
  - {{model: {bodies.REMOTE['anthropic']}, input_per_mtok: 3, output_per_mtok: 15}}
  - {{model: {bodies.REMOTE['openai']}, input_per_mtok: 0.15, output_per_mtok: 0.6}}
projects:
  - {{slug: bench, name: Benchmark{self.project_limits()}}}
"""

    # --policies: what the policy budget is specified for — the key's RPM and TPM limits and the project's monthly
    # budget (the breaker is always on), set far above what the run can reach
    policies = False

    # --optimize: every token-reduction layer on for the bench project (bench/optimize_cost.py measures them alone)
    optimize = False
    OPTIMIZE = ("{cache_breakpoints: true, stable_prefix: true, strip_boilerplate: true, dedupe_tool_results: true, "
                "cap_tool_result_chars: 12000, cap_tool_description_chars: 500, prune_max_tokens: 40000, "
                "diff_first: true}")

    def project_limits(self) -> str:
        optimize = f", optimize: {self.OPTIMIZE}" if self.optimize else ""
        if not self.policies:
            return optimize
        return ", monthly_budget_usd: 10000000" + optimize

    def key_limits(self) -> list[str]:
        if not self.policies:
            return []
        return ["--rpm", "100000000", "--tpm", "2000000000"]

    def prepare_db(self) -> str:
        """migrate, apply the config (operator command if present, else ORM), create a key -> its secret."""
        self._manage("migrate", "--noinput", "-v0", timeout=300)
        path = self.dir / "bench-config.yaml"
        path.write_text(self.config_yaml())
        commands = self._manage("help", "--commands")
        names = set(commands.split())
        if "apply_config" in names and "create_api_key" in names:
            self._manage("apply_config", str(path))
            self.key = self._manage("create_api_key", "bench", "--name", "bench", *self.key_limits()).strip().splitlines()[-1].strip()
            self.setup_via = "manage.py apply_config + create_api_key"
        else:
            self.key = json.loads(self._setup_db("configure", str(path)))["key"]
            self.setup_via = "ORM (bench/setup_db.py; operator commands not present)"
        return self.key

    def usage_count(self) -> int:
        return int(self._setup_db("count"))

    # --- gateway --------------------------------------------------------------------------------------------
    app = "gateway_site.asgi:application"  # --app: an A/B experiment may wrap it (module on PYTHONPATH)

    def gateway_argv(self, server: str, port: int, *, access_log: bool = False, profile: Path | None = None) -> list[str]:
        if server == "daphne":
            argv = ["daphne", "-b", "127.0.0.1", "-p", str(port)]
            # -v 0: no access log (daphne writes one line per request to stdout at the default -v 1).
            argv += ["--access-log", str(self.dir / "daphne-access.log")] if access_log else ["-v", "0"]
            argv += [self.app]
        elif server == "uvicorn":
            argv = ["uvicorn", self.app, "--host", "127.0.0.1", "--port", str(port),
                    "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                    "--log-level", "warning"]
        else:
            raise ValueError(f"unknown server {server!r}")
        if profile is not None:
            return [self.python, "-m", "bench.profiled_server", "--out", str(profile), "--", *argv]
        return [self.python, "-m", *argv]

    def start_gateway(self, server: str, *, access_log: bool = False, profile: Path | None = None) -> int:
        port = free_port()
        argv = taskset(self.gateway_cpu, self.gateway_argv(server, port, access_log=access_log, profile=profile))
        self.gateway_log = self.dir / f"gateway-{server}-{port}.log"
        self.gateway = subprocess.Popen(argv, cwd=ROOT, env=self.env(), stdout=self.gateway_log.open("wb"),
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.gateway_port = port
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.gateway.poll() is not None:
                raise RuntimeError(f"gateway ({server}) exited early:\n{self.gateway_log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        return port
            except OSError:
                time.sleep(0.1)
        self.stop_gateway()
        raise RuntimeError(f"gateway ({server}) did not answer /health:\n{self.gateway_log.read_text()[-3000:]}")

    @property
    def gateway_pid(self) -> int:
        return self.gateway.pid

    def stop_gateway(self, timeout: float = 30) -> int | None:
        """SIGTERM (the ledger drains its queue at exit), then wait; -> exit code."""
        p = self.gateway
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.log("bench: gateway did not stop in time after SIGTERM; killing it")
                p.kill()
                p.wait()
        self.gateway = None
        return p.returncode

    def gateway_log_tail(self, n: int = 3000) -> str:
        return self.gateway_log.read_text(errors="replace")[-n:] if self.gateway_log else ""

    def close(self) -> None:
        try:
            self.stop_gateway()
        finally:
            if self.fake is not None:
                self.fake.stop()
                self.fake = None
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)
