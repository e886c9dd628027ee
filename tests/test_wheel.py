"""The wheel stands alone: built from the tree, installed into a new virtualenv in a temporary directory, and run
from there with nothing of the checkout on its path or in its working directory. It migrates, loads the shipped
price catalogue, runs every operator command of README "Operator commands", serves (daphne, the default), renders
the admin's own templates and static files, and answers a real request through the fake upstream.

By default the new virtualenv borrows this environment's third-party packages (a path line in a .pth file: the
checkout's editable install is not on it) and installs the wheel itself with `--no-deps`: ~15 s. With
GATEHOUSE_WHEEL_FULL=1 (.ci/run) it installs the wheel with its dependencies resolved from the package index
instead, which also checks the wheel's dependency list: ~1 minute."""

import json
import os
import re
import select
import shutil
import subprocess
import sys
import sysconfig
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.conftest import free_port
from tests.fakes.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("gateway_site", "proxy", "accounts", "usage", "batches", "templates", "pyproject.toml", "README.md")
FAKE_KEY = "sk-wheel-upstream"
CONFIG = """
providers:
  - {name: fake, kind: anthropic, base_url: "%s", api_key_env: WHEEL_UPSTREAM_KEY}
models:
  - {alias: wheel-sonnet, targets: [{provider: fake, model: claude-sonnet-4-5}]}
"""


# Runs management commands in the installed package, one JSON argv per line in, one JSON result per line out: one
# Django start-up for all of them instead of ~2 s each (`gatehouse` itself is run as a command too, once).
DRIVER = """
import io, json, sys
import django
django.setup()
from django.core.management import ManagementUtility, call_command
for line in sys.stdin:
    args, out, err, code = json.loads(line), io.StringIO(), io.StringIO(), 0
    try:
        if "--help" in args:
            out.write(ManagementUtility(["gatehouse"]).fetch_command(args[0]).create_parser("gatehouse", args[0]).format_help())
        else:
            call_command(*args, stdout=out, stderr=err)
    except BaseException as e:
        code = 1
        err.write(f"{type(e).__name__}: {e}")
    print(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}), flush=True)
"""


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Installed:
    python: Path
    gatehouse: Path
    run_dir: Path
    env: dict
    driver: subprocess.Popen | None = None

    def command(self, *args: str) -> Done:
        """`gatehouse ARGS` (in the driver process), which must succeed."""
        if self.driver is None:
            self.driver = subprocess.Popen([str(self.python), "-c", DRIVER], cwd=self.run_dir, text=True,
                                           env={**self.env, "DJANGO_SETTINGS_MODULE": "gateway_site.settings"},
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
        self.driver.stdin.write(json.dumps(args) + "\n")
        self.driver.stdin.flush()
        ready, _, _ = select.select([self.driver.stdout], [], [], 120)
        assert ready, f"gatehouse {' '.join(args)} did not finish in 120 s"
        done = Done(**{"returncode": 0, **_result(self.driver.stdout.readline())})
        assert done.returncode == 0, f"gatehouse {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    def close(self) -> None:
        if self.driver is not None:
            self.driver.stdin.close()
            self.driver.wait(timeout=30)


def _result(line: str) -> dict:
    assert line, "the command driver exited"
    result = json.loads(line)
    return {"returncode": result["code"], "stdout": result["stdout"], "stderr": result["stderr"]}


def build_wheel(work: Path) -> Path:
    """From a copy of exactly what the wheel is made of, so the build leaves nothing in the checkout."""
    source = work / "source"
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    return next((work / "dist").glob("gatehouse-*.whl"))


def make_venv(work: Path, wheel: Path) -> Path:
    target = work / "venv"
    if os.environ.get("GATEHOUSE_WHEEL_FULL") == "1":
        venv.create(target, with_pip=True)
        subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True,
                       capture_output=True, timeout=600)  # fmt: skip
        return target
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    # third-party packages only: a plain path line, so the .pth files there (the editable install's) are not run
    Path(purelib, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    target = make_venv(work, build_wheel(work))
    run_dir = work / "run"
    run_dir.mkdir()
    env = {"PATH": f"{target / 'bin'}:/usr/bin:/bin", "HOME": str(work), "GATEWAY_DATA_DIR": str(work / "data"),
           "GATEWAY_ADMIN_PASSWORD": "wheel-admin-password", "WHEEL_UPSTREAM_KEY": FAKE_KEY,
           "GATEWAY_ROLLUP_IN_PROCESS": "off", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    installed = Installed(target / "bin" / "python", target / "bin" / "gatehouse", run_dir, env)
    yield installed
    installed.close()


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream(key=FAKE_KEY) as server:
        yield server


def test_the_installed_package_is_the_one_that_runs(installed):
    code = "import gateway_site, proxy, usage; print(usage.__file__)"
    done = subprocess.run([str(installed.python), "-c", code], cwd=installed.run_dir, env=installed.env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    imported = Path(done.stdout.strip())
    assert imported.is_relative_to(installed.python.parent.parent) and not imported.is_relative_to(ROOT)


def operator_commands() -> set[str]:
    section = README_SECTION.search((ROOT / "README.md").read_text()).group(0)
    return set(re.findall(r"^python manage\.py (\w+)", section, re.M))


README_SECTION = re.compile(r"## Operator commands\n.*?\n## ", re.S)


def test_it_migrates_loads_prices_and_runs_every_operator_command(installed, fake):
    ran = set()

    def run(*args):
        ran.add(args[0])
        return installed.command(*args)

    listed = subprocess.run([str(installed.gatehouse), "help"], cwd=installed.run_dir, env=installed.env,
                            capture_output=True, text=True, check=True, timeout=120).stdout  # the console script
    assert "load_prices" in listed
    assert "replay_savings" not in listed and "seed_ledger" not in listed  # development tooling is not shipped
    run("migrate", "--noinput", "-v0")
    run("collectstatic", "--noinput", "-v0")
    assert (installed.run_dir / "staticfiles" / "usage" / "finance_report.js").is_file()  # not in site-packages
    loaded = run("load_prices").stdout  # the catalogue shipped in the wheel, read from site-packages
    assert re.search(r"prices\.json: [1-9]\d* added", loaded) and "site-packages" in loaded, loaded
    assert "No ANTHROPIC_API_KEY or OPENAI_API_KEY" in run("start_from_env").stdout
    assert "demo" in run("bootstrap").stdout
    config = installed.run_dir / "gatehouse.yaml"
    config.write_text(CONFIG % fake.url)
    assert "providers  1 created" in run("apply_config", str(config)).stdout
    key = run("create_api_key", "demo", "--name", "wheel", "--rpm", "60").stdout.splitlines()[-1]
    spare = run("create_api_key", "demo", "--name", "spare").stdout.splitlines()[-1]
    run("revoke_api_key", spare)
    keys = {k["name"]: k["status"] for k in json.loads(run("list_keys", "--json").stdout)["keys"]}
    assert keys == {"demo key": "active", "wheel": "active", "spare": "revoked"}
    assert run("create_management_token", "wheel-read", "--scope", "read").stdout.splitlines()[-1].startswith("ghm_")
    assert [a["provider"] for a in json.loads(run("list_accounts", "--json").stdout)["accounts"]] == ["fake"]
    assert "All 1 account(s) OK" in run("check_providers", "--timeout", "10").stdout  # a real call to the fake
    assert json.loads(run("gateway_status", "--json").stdout)["unhealthy"] == 0
    run("rollup_usage")
    run("purge_responses")
    for needs_anthropic_oauth in ("oauth_start", "oauth_finish"):
        assert "usage:" in run(needs_anthropic_oauth, "--help").stdout
    missing = operator_commands() - ran
    assert missing == set(), f"README 'Operator commands' lists commands this test does not run: {missing}"
    installed.env["WHEEL_KEY"] = key


def test_it_serves_the_api_the_admin_and_static_files(installed, fake):
    key = installed.env.get("WHEEL_KEY")
    assert key, "needs the database the operator commands test set up"
    port = free_port()
    log = (installed.run_dir / "serve.log").open("wb")
    server = subprocess.Popen([str(installed.python), "-m", "gateway_site.server", "-b", "127.0.0.1", "-p", str(port),
                               "gateway_site.asgi:application"], cwd=installed.run_dir, env=installed.env,
                              stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(server, url, installed.run_dir / "serve.log")
        assert httpx.get(url + "/ready", timeout=5).status_code == 200
        login = httpx.get(url + "/admin/login/", timeout=5)
        assert login.status_code == 200 and "gatehouse-tagline" in login.text  # templates/, shipped as the wheel's data files
        assert httpx.get(url + "/static/usage/finance_report.js", timeout=5).status_code == 200
        client = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
        ask = [{"role": "user", "content": "SAY: served from the wheel"}]
        message = client.messages.create(model="wheel-sonnet", max_tokens=20, messages=ask)
        assert message.content[0].text == "served from the wheel"
    finally:
        server.terminate()
        server.wait(timeout=20)


def wait_healthy(server: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"the installed gateway did not start:\n{log.read_text()}")
