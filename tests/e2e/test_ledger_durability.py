"""A ledger that loses nothing: real gateway processes killed (SIGKILL) and stopped (SIGTERM) mid-stream, a
database that refuses writes for a while, streams cut mid-way; every request ends up in the ledger exactly once,
with the tokens it carried and the status the client got. The kill and the stop are tried under every web start
command the README shows (START_COMMANDS); the Celery worker's are in test_ledger_worker.py."""

import signal
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import openai
import orjson
import pytest

from proxy.formats.sse import SSEParser
from tests.conftest import start_gateway, stop_gateway

from .conftest import PRICES

MTOK = Decimal(1_000_000)
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


# The web start commands the README shows, as gateway() arguments. bin/run and the Docker image (CMD) exec bin/serve
# after their set-up steps, so "serve-daphne" stands for them; "daphne" is the plain command of README "Operations".
START_COMMANDS = {
    "serve-daphne": {},
    "serve-uvicorn": {"GATEWAY_SERVER": "uvicorn"},
    "daphne": {"command": [str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p", "{port}",
                           "gateway_site.asgi:application"]},
}


def session_secrets() -> dict[str, str]:
    """The test session's secrets (keys' digests, stored credentials), for a process with a data dir of its own."""
    from django.conf import settings

    return {name: getattr(settings, name) for name in ("SECRET_KEY", "GATEWAY_ENCRYPTION_KEY", "GATEWAY_KEY_PEPPER")}


def gateway(tmp_path, name: str, command: list[str] | None = None, **env):
    """A gateway of the test's own with its own data dir (its spool), on the shared test database and with the
    test session's secrets; started by bin/serve unless `command` says."""
    env = {**session_secrets(), "GATEWAY_DATA_DIR": str(tmp_path / name), **env}
    return start_gateway(env, tmp_dir=tmp_path, command=command)


def rows_for(request_ids, timeout: float = 15.0, count: int | None = None):
    """The ledger rows of these requests once all are there (the writer is asynchronous)."""
    from usage.models import UsageRecord

    want = len(request_ids) if count is None else count
    deadline = time.monotonic() + timeout
    while True:
        rows = list(UsageRecord.objects.filter(request_id__in=request_ids))
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def spooled(data_dir, request_id: str) -> list[dict]:
    """The request's records in the spools of the process(es) on this data dir, oldest first."""
    records = []
    for path in sorted(data_dir.glob("ledger/*/*.spool")):
        for line in path.read_bytes().splitlines():
            if request_id.encode() in line:
                try:
                    records.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    pass  # a line being written
    return records


def spooled_output(data_dir, request_id: str) -> int:
    """The output tokens of the request's latest snapshot in the server's spool (0 before there is one)."""
    records = [r for r in spooled(data_dir, request_id) if "row" in r]
    return records[-1]["row"]["output_tokens"] if records else 0


def rows_after_a_restart(tmp_path, name: str, request_ids, start: str = "serve-daphne") -> list:
    """Start a gateway on the data dir `name` with the start command `start` (its writer replays the spools of
    dead processes there at start: no model request is sent), wait for these requests' rows, stop it."""
    restarted = gateway(tmp_path, name, **START_COMMANDS[start])
    try:
        return rows_for(request_ids)
    finally:
        stop_gateway(restarted)


def expected_cost(row, model: str) -> Decimal:
    i, o, cr, cw = PRICES[model]
    total = row.input_tokens * i + row.output_tokens * o + row.cache_read_tokens * cr + row.cache_write_tokens * cw
    return (total / MTOK).quantize(Decimal("0.00000001"))


def slow_anthropic_stream(url: str, key: str, model: str, content: str, chunks: int = 20):
    return httpx.stream(
        "POST",
        url + "/v1/messages",
        headers={"x-api-key": key, **ANTHROPIC_HEADERS, "x-fake-chunks": str(chunks)},
        json={"model": model, "max_tokens": 200, "stream": True, "messages": [{"role": "user", "content": content}]},
        timeout=30,
    )


# --- SIGKILL ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, usage_known, start",
    [("gw-anthropic", True, "serve-daphne"), ("gw-openai", False, "serve-daphne"),
     ("gw-anthropic", True, "serve-uvicorn"), ("gw-anthropic", True, "daphne")],
    ids=["anthropic-pass-through", "translated-to-openai", "serve-uvicorn", "plain-daphne"],
)
def test_a_request_in_flight_when_the_process_is_killed_is_in_the_ledger_after_the_restart(
    world, committed, tmp_path, model, usage_known, start
):
    """Killed, then started again by the same command: the new process replays the dead one's spool as it
    starts, before any model request reaches it."""
    server = gateway(tmp_path, "data", **START_COMMANDS[start])
    try:
        script = "SLOW_CHUNKS: 200\nUSAGE: in=700 out=20"
        with slow_anthropic_stream(server.url, world.keys["alpha"], model, script) as response:
            assert response.status_code == 200
            request_id = response.headers["request-id"]
            received = b""
            chunks = response.iter_raw()  # kept: a generator dropped by `break` would close the connection
            for piece in chunks:
                received += piece
                if spooled_output(tmp_path / "data", request_id) >= 3:  # a snapshot has the usage so far
                    break
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=10)
    finally:
        stop_gateway(server)
    assert b"content_block_delta" in received
    assert rows_for([request_id], timeout=1) == []  # the killed process wrote nothing for it

    (row,) = rows_after_a_restart(tmp_path, "data", [request_id], start)  # the same data dir: the dead one's spool
    assert (row.outcome, row.http_status, row.stream) == ("interrupted", 200, True)
    assert row.alias == model and row.project.slug == "alpha" and row.error_type == "api_error"
    if usage_known:  # Anthropic's message_start had the exact input
        assert row.input_tokens == 700
    else:  # an OpenAI upstream tells usage only at the end: the gateway's estimate
        assert row.input_tokens > 0
    assert row.output_tokens >= 3  # at least the deltas of the first second (one per 200 ms)
    assert row.cost_usd == expected_cost(row, row.remote_model) > 0


def test_requests_answered_before_a_kill_are_not_lost_or_written_twice(world, committed, tmp_path):
    """A long flush interval: the rows are only in the spool when the process is killed."""
    server = gateway(tmp_path, "data", GATEWAY_LEDGER_FLUSH_SECONDS="60")
    ids = []
    try:
        client = world.openai()
        for i in range(5):
            completion = client.with_options(base_url=server.url + "/v1").chat.completions.create(
                model="gw-openai", messages=[{"role": "user", "content": f"SAY: kept {i}\nUSAGE: in=10 out=2"}]
            )
            ids.append(completion._request_id)
        assert rows_for(ids, timeout=0.5) == []  # still waiting for the flush
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    finally:
        stop_gateway(server)
    for attempt in range(2):  # replayed once; a second restart finds nothing left to replay
        rows = rows_after_a_restart(tmp_path, "data", ids)
        assert sorted(r.request_id for r in rows) == sorted(ids)
        assert {(r.outcome, r.input_tokens, r.output_tokens) for r in rows} == {("ok", 10, 2)}


def test_two_servers_on_one_data_dir_replay_only_a_dead_ones_spool(world, committed, tmp_path):
    """A server starting next to a live one leaves the live one's spool alone; once it is killed, the next start
    replays it."""
    slow = gateway(tmp_path, "shared", GATEWAY_LEDGER_FLUSH_SECONDS="60")  # its rows stay in its spool
    ids = []
    try:
        client = world.openai().with_options(base_url=slow.url + "/v1")
        for i in range(3):
            ids.append(client.chat.completions.create(
                model="gw-openai", messages=[{"role": "user", "content": f"SAY: mine {i}"}])._request_id)  # fmt: skip
        neighbour = gateway(tmp_path, "shared")  # scans the shared spools at start
        try:
            assert rows_for(ids, timeout=1) == []  # the live server's spool was not replayed by its neighbour
            slow.process.send_signal(signal.SIGKILL)
            slow.process.wait(timeout=10)
        finally:
            stop_gateway(neighbour)
    finally:
        stop_gateway(slow)
    rows = rows_after_a_restart(tmp_path, "shared", ids)
    assert sorted(r.request_id for r in rows) == sorted(ids)


# --- SIGTERM ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", list(START_COMMANDS))
def test_sigterm_lets_streams_finish_within_the_grace_and_ends_the_rest_with_an_error_event(
    world, committed, tmp_path, start
):
    server = gateway(tmp_path, "data", GATEWAY_SHUTDOWN_GRACE_SECONDS="4", **START_COMMANDS[start])
    results: dict[str, object] = {}
    streaming = [threading.Event() for _ in range(3)]
    asked = threading.Event()

    def short_stream():  # ~1 s: finishes inside the grace period (4 s)
        with world.anthropic().with_options(base_url=server.url).messages.stream(
            model="gw-anthropic",
            max_tokens=100,
            messages=[{"role": "user", "content": "SLOW_CHUNKS: 100\nSAY: one two three four five six seven eight"}],
            extra_headers={"x-fake-chunks": "8"},
        ) as stream:
            streaming[0].set()
            results["short"] = (stream.get_final_message(), stream.response.headers["request-id"])

    def long_anthropic():  # ~8 s: still running when the grace is over
        script = "SLOW_CHUNKS: 400\nUSAGE: in=50 out=20"
        with slow_anthropic_stream(server.url, world.keys["alpha"], "gw-openai", script) as r:
            results["long_anthropic_id"] = r.headers["request-id"]
            streaming[1].set()
            results["long_anthropic"] = [e for e in SSEParser().feed(r.read())]

    def long_openai():
        stream = world.openai().with_options(base_url=server.url + "/v1").chat.completions.create(
            model="gw-anthropic",
            messages=[{"role": "user", "content": "SLOW_CHUNKS: 400\nUSAGE: in=60 out=20"}],
            stream=True,
            extra_headers={"x-fake-chunks": "20"},
        )
        results["long_openai_id"] = stream.response.headers["x-request-id"]
        streaming[2].set()
        try:
            for _ in stream:
                pass
        except openai.APIError as exc:
            results["long_openai"] = exc

    def slow_answer():  # not streamed, its upstream silent for 8 s: answered with an error after the grace
        asked.set()
        try:
            world.openai().with_options(base_url=server.url + "/v1", timeout=30).chat.completions.create(
                model="gw-openai", messages=[{"role": "user", "content": "SLOW: 8000\nSAY: too slow"}]
            )
        except openai.APIStatusError as exc:
            results["slow_answer"] = exc

    threads = [threading.Thread(target=f) for f in (short_stream, long_anthropic, long_openai, slow_answer)]
    for t in threads:
        t.start()
    assert all(started.wait(10) for started in streaming) and asked.wait(10)
    time.sleep(0.3)  # the slow request has reached the gateway
    term_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):  # no new connections once draining
        httpx.get(server.url + "/health", timeout=2)
    for t in threads:
        t.join(timeout=20)
    server.process.wait(timeout=20)
    stopped_after = time.monotonic() - term_at
    assert 4 <= stopped_after < 4 + 5 + 3, stopped_after  # the grace, the streams' END_SECONDS, exit slack

    message, short_id = results["short"]
    assert message.content[0].text == "one two three four five six seven eight"
    events = results["long_anthropic"]
    assert events[-1].event == "error" and b"overloaded_error" in events[-1].data  # Anthropic's retryable error
    assert any(e.event == "content_block_delta" for e in events)
    assert isinstance(results["long_openai"], openai.APIError)
    assert "restarting" in str(results["long_openai"])

    slow = results["slow_answer"]
    assert slow.status_code == 503 and "restarting" in slow.response.json()["error"]["message"]  # OpenAI's shape

    ids = [short_id, results["long_anthropic_id"], results["long_openai_id"], slow.response.headers["x-request-id"]]
    rows = {r.request_id: r for r in rows_for(ids)}  # written before the process exited: it is gone now
    assert len(rows) == 4
    assert (rows[ids[3]].outcome, rows[ids[3]].http_status) == ("interrupted", 503)
    short, long_a, long_o = (rows[i] for i in ids[:3])
    assert (short.outcome, short.http_status) == ("ok", 200)
    for row in (long_a, long_o):
        assert (row.outcome, row.http_status, row.error_type) == ("interrupted", 200, "overloaded")
        assert row.output_tokens >= 3 and row.cost_usd > 0
    assert long_o.input_tokens == 60  # the Anthropic upstream's message_start


# --- database unavailable -----------------------------------------------------------------------------------


class DatabaseLock:
    """Holds the ledger table so no row can be written: SQLite an exclusive transaction (WAL: readers still
    read), PostgreSQL an EXCLUSIVE table lock (reads allowed, writes wait)."""

    def __init__(self):
        from django.db import connection

        self.settings = connection.settings_dict
        self.vendor = connection.vendor

    def __enter__(self):
        if self.vendor == "sqlite":
            import sqlite3

            self.conn = sqlite3.connect(self.settings["NAME"], isolation_level=None, check_same_thread=False)
            self.conn.execute("BEGIN EXCLUSIVE")
        else:
            import psycopg

            s = self.settings
            self.conn = psycopg.connect(
                host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"], password=s["PASSWORD"] or None,
                dbname=s["NAME"],
            )
            self.conn.execute("LOCK TABLE usage_usagerecord IN EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc):
        self.conn.rollback() if self.vendor != "sqlite" else self.conn.execute("ROLLBACK")
        self.conn.close()


def test_rows_wait_while_the_database_refuses_writes_and_arrive_once_it_is_back(world, committed, tmp_path):
    server = gateway(tmp_path, "data")
    ids = []
    try:
        client = world.openai().with_options(base_url=server.url + "/v1")
        client.chat.completions.create(model="gw-openai", messages=[{"role": "user", "content": "SAY: warm"}])
        with DatabaseLock():
            for i in range(10):
                stream = i % 2 == 0
                completion = client.chat.completions.with_raw_response.create(
                    model="gw-openai", messages=[{"role": "user", "content": f"SAY: held {i}\nUSAGE: in=5 out=1"}],
                    stream=stream,
                )
                assert completion.status_code == 200
                ids.append(completion.headers["x-request-id"])
                if stream:
                    list(completion.parse())
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline:
                ready = httpx.get(server.url + "/ready", timeout=5)
                if ready.json()["checks"]["ledger"] == "degraded":
                    break
                time.sleep(0.2)
            assert ready.status_code == 200  # still serving: not taken out of rotation
            assert ready.json()["status"] == "degraded" and ready.json()["checks"]["ledger_backlog"] >= 10
            assert "gateway_ledger_backlog_rows" in httpx.get(server.url + "/metrics").text
            assert rows_for(ids, timeout=0.2) == []
        rows = rows_for(ids, timeout=20)
        assert sorted(r.request_id for r in rows) == sorted(ids)  # every one, none twice
        deadline = time.monotonic() + 10
        while httpx.get(server.url + "/ready").json()["checks"]["ledger"] != "ok":
            assert time.monotonic() < deadline, "the ledger stayed degraded after the database came back"
            time.sleep(0.2)
    finally:
        stop_gateway(server)
    assert len(rows_for(ids)) == 10  # still exactly once after the shutdown drained the writer


# --- partial answers and what is recorded -------------------------------------------------------------------


@pytest.mark.parametrize("fail", ["truncate", "early_eof"])
def test_an_openai_pass_through_stream_cut_mid_way_is_charged_for_what_it_carried(world, ledger, fail):
    stream = world.openai().chat.completions.create(
        model="gw-openai", stream=True,
        messages=[{"role": "user", "content": f"SAY: a b c d e f g h i j\nFAIL: {fail}"}],
    )
    pieces = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    assert len(pieces) == 3  # the fake cuts after three content deltas
    row = ledger(stream.response.headers["x-request-id"])
    assert (row.outcome, row.http_status) == ("interrupted", 200)
    assert row.input_tokens > 0 and row.output_tokens >= 3
    assert row.cost_usd == expected_cost(row, "fake-gpt") > 0


def test_an_anthropic_pass_through_stream_cut_mid_way_keeps_the_exact_input(world, ledger):
    with pytest.raises(anthropic.APIError):
        with world.anthropic().messages.stream(
            model="gw-anthropic", max_tokens=100,
            messages=[{"role": "user", "content": "SAY: a b c d e f g h\nUSAGE: in=321 out=8\nFAIL: truncate"}],
        ) as stream:
            request_id = stream.response.headers["request-id"]
            for _ in stream:
                pass
    row = ledger(request_id)
    assert (row.outcome, row.input_tokens) == ("interrupted", 321)
    assert row.output_tokens >= 3 and row.cost_usd == expected_cost(row, "fake-claude")


def test_a_stream_abandoned_by_the_client_is_charged_for_what_it_carried(world, ledger):
    script = "SLOW_CHUNKS: 100\nUSAGE: in=90 out=20"
    with slow_anthropic_stream(world.url, world.keys["alpha"], "gw-anthropic", script) as r:
        request_id = r.headers["request-id"]
        received = b""
        for piece in r.iter_raw():
            received += piece
            if received.count(b"content_block_delta") >= 8:  # event: line and type field: 4 deltas
                break
    row = ledger(request_id)
    assert (row.outcome, row.input_tokens) == ("cancelled", 90)
    assert row.output_tokens >= 4 and row.cost_usd == expected_cost(row, "fake-claude") > 0


def test_the_row_keeps_the_model_name_the_client_asked_for(world, ledger):
    message = world.anthropic().messages.create(
        model="claude-opus-4-8", max_tokens=20, messages=[{"role": "user", "content": "SAY: hi"}]
    )
    row = ledger(message._request_id)
    assert (row.alias, row.requested_model, row.remote_model) == ("claude-*", "claude-opus-4-8", "fake-gpt")


@pytest.mark.parametrize("client, status", [("anthropic", 402), ("openai", 429)])
def test_the_row_has_the_status_the_client_got(world, ledger, committed, client, status):
    """A budget refusal is 402 for Anthropic callers and 429 for OpenAI callers: the row says which."""
    from accounts.keys import key_create
    from accounts.models import Project

    project, _ = Project.objects.get_or_create(
        slug="broke", defaults={"name": "Broke", "monthly_budget_usd": Decimal("0.01")}
    )
    _, secret = key_create(project=project, name=f"broke-{client}")
    time.sleep(0.6)  # the test server's key cache (GATEWAY_CACHE_TTL 0.5 s)
    if client == "anthropic":
        with pytest.raises(anthropic.APIStatusError) as caught:
            anthropic.Anthropic(base_url=world.url, api_key=secret, max_retries=0).messages.create(
                model="gw-openai", max_tokens=20000, messages=[{"role": "user", "content": "hi"}]
            )
        request_id = caught.value.response.headers["request-id"]
    else:
        with pytest.raises(openai.APIStatusError) as caught:
            openai.OpenAI(base_url=world.url + "/v1", api_key=secret, max_retries=0).chat.completions.create(
                model="gw-openai", max_tokens=20000, messages=[{"role": "user", "content": "hi"}]
            )
        request_id = caught.value.response.headers["x-request-id"]
    assert caught.value.status_code == status
    row = ledger(request_id)
    assert (row.outcome, row.http_status) == ("budget_exceeded", status)
