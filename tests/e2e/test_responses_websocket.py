"""The Responses API over WebSocket (proxy/ws.py) through the real server (daphne): the openai SDK's own client
(`client.responses.connect()`) and raw frames (the `websockets` package the SDK uses), against the fake upstream
of both kinds. Codex itself over the socket: tests/e2e/test_codex_cli.py.

Each test that counts ledger rows uses a key of its own (`fresh_key`)."""

import json
import signal
import time

import httpx
import openai
import pytest
from django.utils import timezone
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import start_gateway, stop_gateway
from tests.e2e.optimize_world import key_with, marker, upstream_calls

from .test_responses_optimize import KINDS, alias, codex_input, native_alias, upstream_texts  # noqa: F401  (fixtures)

TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")
kinds = pytest.mark.parametrize("model", ["gw-openai", "gw-anthropic"])


def fresh_key(name: str = "ws") -> str:
    from accounts.keys import key_create
    from accounts.models import Project

    return key_create(project=Project.objects.get(slug="alpha"), name=name)[1]


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/responses"


def sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)


def one_response(conn) -> list:
    """The events of one response on an SDK connection, up to its terminal event."""
    events = []
    for event in conn:
        events.append(event)
        if event.type in TERMINAL:
            return events
    raise AssertionError(f"the connection ended mid-response: {[e.type for e in events]}")


def raw_response(sock) -> list[dict]:
    events = []
    for _ in range(1000):
        events.append(json.loads(sock.recv(timeout=20)))
        if events[-1]["type"] in TERMINAL:
            return events
    raise AssertionError("no terminal event")


def rows(key: str, count: int, timeout: float = 5.0) -> list:
    """The ledger rows of `key`, once there are `count` (the writer is asynchronous)."""
    from accounts.keys import digest
    from usage.models import UsageRecord

    deadline = time.monotonic() + timeout
    while True:
        found = list(UsageRecord.objects.filter(api_key__digest=digest(key)).order_by("id"))
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def create(model: str, text: str, **fields) -> str:
    return json.dumps({"type": "response.create", "model": model, "input": text, **fields})


# --- the same answers as HTTP -------------------------------------------------------------------------------


@kinds
def test_events_are_those_of_the_sse_stream_and_each_response_has_its_row(world, committed, model):
    key = fresh_key()
    client = sdk(world.url, key)
    over_http = list(client.responses.create(model=model, input="SAY: same events both ways", stream=True))
    with client.responses.connect() as conn:
        conn.response.create(model=model, input="SAY: same events both ways")
        over_ws = one_response(conn)
    assert [e.type for e in over_ws] == [e.type for e in over_http]
    assert [e.sequence_number for e in over_ws] == list(range(len(over_ws)))
    assert over_ws[-1].type == "response.completed"
    assert over_ws[-1].response.output_text == over_http[-1].response.output_text == "same events both ways"
    http_row, ws_row = rows(key, 2)
    assert (ws_row.ingress_api, ws_row.stream, ws_row.outcome, ws_row.http_status) == ("responses", True, "ok", 200)
    assert ws_row.upstream_api == http_row.upstream_api == ("openai" if model == "gw-openai" else "anthropic")
    assert ws_row.input_tokens == http_row.input_tokens and ws_row.cost_usd == http_row.cost_usd > 0


@pytest.mark.parametrize("alias", KINDS, indirect=True)
def test_token_reduction_and_the_response_cache_apply_over_the_socket(world, committed, alias):
    """The project's layers, to every upstream kind (the third: a Responses upstream, passed through)."""
    secret, mark = key_with(response_cache_ttl=60, dedupe_tool_results=True), marker()
    tools = [{"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}}]
    with sdk(world.url, secret).responses.connect() as conn:
        answers = []
        for _ in range(2):
            conn.response.create(model=alias, input=codex_input(mark), tools=tools, temperature=0)
            answers.append(one_response(conn)[-1])
    assert [a.type for a in answers] == ["response.completed"] * 2
    assert answers[0].response.output_text == answers[1].response.output_text == f"reduced {mark}"
    (upstream,) = upstream_calls(world.fake, mark)  # the second answer came from the cache
    assert "identical to the result of tool call call_1" in upstream_texts(upstream["body"])
    live, hit = rows(secret, 2)
    assert (live.reductions, live.outcome, hit.outcome) == ("dedupe", "ok", "cache_hit")


def test_several_responses_on_one_connection_chain_with_previous_response_id(world, committed):
    """`store: false` responses chain within their connection (what Codex does); stored ones also from another."""
    key = fresh_key()
    client = sdk(world.url, key)
    world.fake.state.reset()
    with client.responses.connect() as conn:
        conn.response.create(model="gw-openai", input="SAY: first answer", store=False)
        first = one_response(conn)[-1].response
        conn.response.create(
            model="gw-anthropic", input="SAY: second answer", store=False, previous_response_id=first.id
        )
        second = one_response(conn)[-1].response
        conn.response.create(model="gw-openai", input="SAY: third answer", previous_response_id=second.id)
        third = one_response(conn)[-1].response
    answers = [first.output_text, second.output_text, third.output_text]
    assert answers == ["first answer", "second answer", "third answer"]
    history = json.dumps(world.upstream_requests()[-1]["body"])
    assert history.index("SAY: first answer") < history.index("second answer") < history.index("SAY: third answer")
    with pytest.raises(openai.NotFoundError):  # store: false responses were never stored
        client.responses.retrieve(first.id)
    with client.responses.connect() as other:  # a stored one continues on another connection, as over HTTP
        other.response.create(model="gw-openai", input="SAY: fourth answer", previous_response_id=third.id)
        assert one_response(other)[-1].response.output_text == "fourth answer"
        other.response.create(model="gw-openai", input="SAY: no", store=False, previous_response_id=first.id)
        (error,) = one_response(other)  # another connection's store:false response is unknown here
        assert error.type == "error" and error.status == 400 and error.error.param == "previous_response_id"
    assert len(rows(key, 4)) == 4  # the refused continuation never reached the core: no row, as over HTTP


def test_a_warm_up_with_generate_false_calls_no_upstream_and_the_next_request_continues_from_it(world, committed):
    """What Codex sends first on a connection: its prompt and tools with `generate: false`."""
    key, mark = fresh_key(), marker()
    prompt = [{"type": "input_text", "text": f"Be brief {mark}"}]
    developer = {"type": "message", "role": "developer", "content": prompt}
    with connect(ws_url(world.url), additional_headers={"authorization": f"Bearer {key}"}) as sock:
        sock.send(json.dumps({"type": "response.create", "model": "gw-anthropic", "input": [developer],
                              "generate": False, "store": False}))  # fmt: skip
        warm = raw_response(sock)
        assert [e["type"] for e in warm] == ["response.created", "response.in_progress", "response.completed"]
        assert warm[-1]["response"]["output"] == [] and warm[-1]["response"]["usage"]["total_tokens"] == 0
        assert upstream_calls(world.fake, mark) == [] and rows(key, 1, timeout=0.5) == []
        sock.send(create("gw-anthropic", f"SAY: warmed {mark}", store=False,
                         previous_response_id=warm[-1]["response"]["id"]))  # fmt: skip
        assert raw_response(sock)[-1]["response"]["output"][0]["content"][0]["text"] == f"warmed {mark}"
    (upstream,) = upstream_calls(world.fake, mark)
    assert f"Be brief {mark}" in json.dumps(upstream["body"]["system"])  # the warm-up's input came first
    assert len(rows(key, 1)) == 1
    beta = {"authorization": f"Bearer {world.keys['beta']}"}  # a key that may use gw-anthropic only
    with connect(ws_url(world.url), additional_headers=beta) as sock:  # its warm-up is refused like a request
        sock.send(json.dumps({"type": "response.create", "model": "gw-openai", "input": "hi", "generate": False}))
        (error,) = raw_response(sock)
        assert error["type"] == "error" and error["status"] in (403, 404), error


def test_an_error_before_the_stream_is_an_error_event_with_its_row_and_the_socket_goes_on(world, committed):
    key = fresh_key()
    with connect(ws_url(world.url), additional_headers={"authorization": f"Bearer {key}"}) as sock:
        sock.send(create("no-such-model", "SAY: hi"))
        (error,) = raw_response(sock)
        assert error["status"] == 404 and error["error"]["code"] == "model_not_found", error
        assert error["error"]["headers"]["x-request-id"]
        sock.send(create("gw-openai", "FAIL: 400"))  # the upstream refuses: its error, as over HTTP
        (upstream_error,) = raw_response(sock)
        assert upstream_error["status"] == 400 and upstream_error["error"]["type"] == "invalid_request_error"
        sock.send(create("gw-openai", "SAY: still here"))
        assert raw_response(sock)[-1]["response"]["output"][0]["content"][0]["text"] == "still here"
    refused_model, refused_upstream, ok = rows(key, 3)
    assert refused_model.request_id == error["error"]["headers"]["x-request-id"]
    assert (refused_model.outcome, refused_upstream.http_status, ok.outcome) == ("client_error", 400, "ok")


def test_malformed_frames_get_an_error_event_and_the_connection_stays_usable(world, committed):
    key = fresh_key()
    with connect(ws_url(world.url), additional_headers={"authorization": f"Bearer {key}"}) as sock:
        for frame in ("not json", "[1, 2]", json.dumps({"type": "session.update"}), json.dumps({"model": "gw-openai"})):
            sock.send(frame)
            event = json.loads(sock.recv(timeout=10))
            assert event["type"] == "error" and event["status"] == 400, (frame, event)
            assert event["error"]["type"] == "invalid_request_error" and event["error"]["message"]
        sock.send(b'{"type": "response.create", "model": "gw-openai", "input": "SAY: bytes are fine"}')
        assert raw_response(sock)[-1]["type"] == "response.completed"
    assert len(rows(key, 1)) == 1  # the frames that were not requests wrote no rows


def test_a_client_that_closes_mid_response_cancels_it(world, committed):
    key = fresh_key()
    words = " ".join(f"w{i}" for i in range(40))
    with connect(ws_url(world.url), additional_headers={"authorization": f"Bearer {key}"}) as sock:
        sock.send(create("gw-openai", f"SLOW_CHUNKS: 100\nSAY: {words}"))
        for _ in range(100):
            if json.loads(sock.recv(timeout=10))["type"] == "response.output_text.delta":
                break
    (row,) = rows(key, 1)
    assert row.outcome == "cancelled" and row.stream, row.outcome
    assert 0 < row.output_tokens < 40  # charged for what was relayed, not for the whole answer


# --- authentication at the upgrade ------------------------------------------------------------------------


@pytest.mark.parametrize("persona", [None, "revoked", "expired", "bogus"])
def test_a_bad_key_is_refused_at_the_upgrade_as_over_http(world, persona):
    keys = {**world.keys, "bogus": "gh_" + "x" * 45}
    headers = {} if persona is None else {"authorization": f"Bearer {keys[persona]}"}
    over_http = httpx.post(world.url + "/v1/responses", json={"model": "gw-openai", "input": "hi"}, headers=headers)
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(world.url), additional_headers=headers)
    response = refused.value.response
    assert response.status_code == over_http.status_code == 401
    assert json.loads(response.body)["error"] == over_http.json()["error"]


def test_a_bad_key_seen_before_is_refused_again(world):
    """The second time, the guard knows the key is bad without a lookup: the same refusal."""
    headers = {"authorization": "Bearer gh_" + "y" * 45}
    bodies = []
    for _ in range(2):
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(world.url), additional_headers=headers)
        bodies.append((refused.value.response.status_code, json.loads(refused.value.response.body)))
    assert bodies[0] == bodies[1] and bodies[0][0] == 401


def test_a_key_revoked_while_its_connection_is_open_is_refused_on_its_next_request(world, committed):
    from accounts.keys import key_create
    from accounts.models import Project

    row, key = key_create(project=Project.objects.get(slug="alpha"), name="revoked-later")
    with connect(ws_url(world.url), additional_headers={"authorization": f"Bearer {key}"}) as sock:
        sock.send(create("gw-openai", "SAY: before"))
        assert raw_response(sock)[-1]["type"] == "response.completed"
        row.revoked_at = timezone.now()
        row.save()
        time.sleep(0.7)  # the server's key cache lives 0.5 s in the tests (GATEWAY_CACHE_TTL)
        sock.send(create("gw-openai", "SAY: after"))
        (error,) = raw_response(sock)
        assert error["status"] == 401 and error["error"]["type"] == "invalid_request_error", error
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=5)
    assert closed.value.rcvd.code == 4401
    assert len(rows(key, 1)) == 1


def test_the_openai_sdk_reports_a_refused_key(world):
    client = sdk(world.url, "gh_" + "z" * 45)
    with pytest.raises(InvalidStatus) as refused:
        with client.responses.connect() as conn:
            conn.response.create(model="gw-openai", input="hi")
    assert refused.value.response.status_code == 401


# --- limits -------------------------------------------------------------------------------------------------

LIMITS = {
    "GATEWAY_WS_MAX_FRAMES": "3",
    "GATEWAY_WS_MAX_FRAME_BYTES": "65536",
    "GATEWAY_WS_MAX_CONNECTIONS_PER_KEY": "1",
    "GATEWAY_WS_MAX_LIFETIME_SECONDS": "2",
}


@pytest.fixture(scope="module")
def limited(world, tmp_path_factory):
    server = start_gateway(LIMITS, tmp_dir=tmp_path_factory.mktemp("ws-limits"))
    yield server
    stop_gateway(server)


def _open(base: str, key: str):
    return connect(ws_url(base), additional_headers={"authorization": f"Bearer {key}"}, max_size=None)


def test_frames_past_the_limit_end_the_connection_with_the_code_codex_reconnects_on(limited, committed):
    with _open(limited.url, fresh_key()) as sock:
        for _ in range(3):
            sock.send(create("gw-openai", "SAY: counted"))
            assert raw_response(sock)[-1]["type"] == "response.completed"
        sock.send(create("gw-openai", "SAY: one too many"))
        (error,) = raw_response(sock)
        assert error["error"]["code"] == "websocket_connection_limit_reached", error
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=5)
    assert closed.value.rcvd.code == 1000


def test_a_frame_over_the_size_limit_gets_an_error_and_the_connection_stays(limited, committed):
    with _open(limited.url, fresh_key()) as sock:
        sock.send(create("gw-openai", "x" * 70_000))
        (error,) = raw_response(sock)
        assert error["status"] == 413 and "65536" in error["error"]["message"], error
        sock.send(create("gw-openai", "SAY: small again"))
        assert raw_response(sock)[-1]["type"] == "response.completed"


def test_one_key_holds_at_most_its_connections(limited, committed):
    key = fresh_key()
    with _open(limited.url, key):
        with _open(limited.url, key) as second:
            event = json.loads(second.recv(timeout=5))
            assert event["status"] == 429 and event["error"]["type"] in ("rate_limit_error", "requests"), event
            with pytest.raises(ConnectionClosed) as closed:
                second.recv(timeout=5)
            assert closed.value.rcvd.code == 4429
    time.sleep(0.3)  # the server counts the first one out as it sees it close
    with _open(limited.url, key) as third:
        third.send(create("gw-openai", "SAY: a slot again"))
        assert raw_response(third)[-1]["type"] == "response.completed"


def test_a_connection_past_its_lifetime_is_closed(limited, committed):
    with _open(limited.url, fresh_key()) as sock:
        sock.send(create("gw-openai", "SAY: within the lifetime"))
        assert raw_response(sock)[-1]["type"] == "response.completed"
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=10)  # the idle timeout is the default 600 s: only the lifetime ends it
    assert closed.value.rcvd.code == 1000


@pytest.fixture(scope="module")
def strict(world, tmp_path_factory):
    """Idle connections closed after 1 s; an address throttled after 2 bad keys."""
    env = {"GATEWAY_WS_IDLE_SECONDS": "1", "GATEWAY_AUTH_FAILURE_LIMIT": "2",
           "GATEWAY_AUTH_FAILURE_WINDOW_SECONDS": "60"}  # fmt: skip
    server = start_gateway(env, tmp_dir=tmp_path_factory.mktemp("ws-strict"))
    yield server
    stop_gateway(server)


def test_an_idle_connection_is_closed(strict, world):
    with _open(strict.url, world.keys["alpha"]) as sock:
        sock.send(create("gw-openai", "SAY: then nothing"))
        assert raw_response(sock)[-1]["type"] == "response.completed"
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=10)
    assert closed.value.rcvd.code == 1000


def test_an_address_throttled_for_bad_keys_is_refused_at_the_upgrade(strict, committed):
    for i in range(2):
        with pytest.raises(InvalidStatus) as refused:
            _open(strict.url, f"gh_bad{i:045d}")
        assert refused.value.response.status_code == 401
    time.sleep(0.2)  # the failures are counted right after the answers
    with pytest.raises(InvalidStatus) as throttled:
        _open(strict.url, fresh_key())  # a good key this process has never seen: the address is throttled
    assert throttled.value.response.status_code == 429
    assert json.loads(throttled.value.response.body)["error"]["message"].startswith("too many requests")


def test_uvicorn_serves_the_socket_and_refuses_a_bad_key_with_the_http_answer(world, committed, tmp_path):
    """uvicorn runs no header guard: the consumer refuses with the ASGI denial response (the same 401 body)."""
    server = start_gateway(tmp_dir=tmp_path, server="uvicorn")
    try:
        headers = {"authorization": f"Bearer {world.keys['revoked']}"}
        over_http = httpx.post(server.url + "/v1/responses", json={"model": "gw-openai", "input": "hi"},
                               headers=headers)  # fmt: skip
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(server.url), additional_headers=headers)
        assert refused.value.response.status_code == over_http.status_code == 401
        assert json.loads(refused.value.response.body)["error"] == over_http.json()["error"]
        with sdk(server.url, fresh_key()).responses.connect() as conn:
            conn.response.create(model="gw-anthropic", input="SAY: over uvicorn")
            assert one_response(conn)[-1].response.output_text == "over uvicorn"
    finally:
        stop_gateway(server)


def test_a_graceful_stop_ends_a_response_in_flight_with_the_error_event(world, committed, tmp_path):
    """SIGTERM: the response running on the socket gets the grace period, then the shutdown's error event and
    `response.failed`, and its row says interrupted (as an HTTP stream's does)."""
    server = start_gateway({"GATEWAY_SHUTDOWN_GRACE_SECONDS": "1"}, tmp_dir=tmp_path)
    key = fresh_key()
    words = " ".join(f"w{i}" for i in range(100))
    try:
        with connect(ws_url(server.url), additional_headers={"authorization": f"Bearer {key}"}) as sock:
            sock.send(create("gw-openai", f"SLOW_CHUNKS: 100\nSAY: {words}"))
            while json.loads(sock.recv(timeout=10))["type"] != "response.output_text.delta":
                pass
            server.process.send_signal(signal.SIGTERM)
            error = raw_response(sock)[-1]
            failed = json.loads(sock.recv(timeout=10))  # a stream's error event is followed by its end
    finally:
        stop_gateway(server)
    assert (error["type"], failed["type"]) == ("error", "response.failed"), (error, failed)
    assert "restarting" in error["error"]["message"]
    (row,) = rows(key, 1)
    assert row.outcome == "interrupted" and 0 < row.output_tokens < 100
