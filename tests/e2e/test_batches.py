"""Batches end to end: the official anthropic and openai SDKs against a real gateway (daphne) and a real Celery
worker (with beat) on Redis, in front of the scripted fake upstream. Both upstream kinds are used, so items are
translated (an OpenAI-compatible upstream behind the Anthropic API and the other way round) and passed through.

The worker's visibility timeout and item lease are seconds here (minutes in production), so the worker-kill test
sees a dead worker's task come back quickly.
"""

import time
from dataclasses import dataclass, field
from decimal import Decimal

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.celery_world import celery_env, kill_worker, start_worker, stop_worker
from tests.conftest import start_gateway, stop_gateway
from tests.e2e import policy_world as pw

BATCH_ENV = {
    "GATEWAY_CELERY_VISIBILITY_TIMEOUT": "3",
    "GATEWAY_BATCH_ITEM_LEASE_SECONDS": "3",
    "GATEWAY_BATCH_TICK_SECONDS": "1",
    "GATEWAY_BATCH_CHUNK": "4",
    "GATEWAY_BATCH_ITEM_CONCURRENCY": "4",
    "GATEWAY_BATCH_MAX_ITEMS": "50",
    "GATEWAY_BATCH_LIVE_RESERVE": "0.5",
    "GATEWAY_BATCH_PROJECT_CHUNKS": "1",
    "GATEWAY_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),  # the batch bodies' own limit (production: 256 MB)
}


@dataclass
class BatchWorld:
    url: str
    fake: object
    env: dict
    tmp: object
    workers: list = field(default_factory=list)
    claude: str = ""  # alias -> the fake's Anthropic API (pass-through for Anthropic callers)
    gpt: str = ""  # alias -> the fake's OpenAI API (translated for Anthropic callers)
    native_gpt: str = ""  # alias -> the fake's OpenAI API, flagged as having Files + Batches
    key: str = ""
    other_key: str = ""
    project_id: int = 0

    def anthropic(self, secret=None) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=secret or self.key, max_retries=0)

    def openai(self, secret=None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=secret or self.key, max_retries=0)


@pytest.fixture(scope="module")
def bw(django_db_setup, django_db_blocker, fake_upstream, tmp_path_factory):
    from usage.models import ModelPrice

    tmp = tmp_path_factory.mktemp("batches")
    env = celery_env(**BATCH_ENV)
    with django_db_blocker.unblock():
        claude_model, gpt_model = pw.unique("batch-claude"), pw.unique("batch-gpt")
        pw.price(claude_model, "3", "15")
        pw.price(gpt_model, "2", "8")
        claude = pw.route((pw.provider(fake_upstream, kind="anthropic"), claude_model, 0))
        gpt = pw.route((pw.provider(fake_upstream), gpt_model, 0))
        native_gpt_model = pw.unique("batch-native-gpt")
        pw.price(native_gpt_model, "2", "8")
        batch_capable = pw.provider(fake_upstream)
        batch_capable.capabilities = {"supports_batches": True}
        batch_capable.save()
        native_gpt = pw.route((batch_capable, native_gpt_model, 0))
        ModelPrice.objects.filter(model__in=[claude_model, native_gpt_model]).update(batch_discount=Decimal("0.5"))
        project = pw.project()
        key, other_key = pw.key(project), pw.key(pw.project())
        server = start_gateway(extra_env=env, tmp_dir=tmp)
        world = BatchWorld(server.url, fake_upstream, env, tmp, claude=claude, gpt=gpt, native_gpt=native_gpt, key=key,
                           other_key=other_key, project_id=project.id)
        try:
            world.workers.append(start_worker(env, tmp_dir=tmp, beat=True))
            pw.wait_for_config(server.url, key, gpt)
            yield world
        finally:
            for worker in world.workers:
                stop_worker(worker)
            stop_gateway(server)


def _wait(fetch, done, timeout=60.0, what="the batch to end"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if done(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {value}")


def _ledger(batch_id: str, expected: int, timeout: float = 10.0):
    from usage.models import UsageRecord

    rows = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(UsageRecord.objects.filter(batch_id=batch_id).order_by("id"))
        if len(rows) >= expected:
            return rows
        time.sleep(0.1)
    return rows


def _anthropic_params(model: str, text: str) -> dict:
    return {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}]}


def test_anthropic_sdk_batch_runs_on_a_worker_with_one_priced_ledger_row_per_item(bw, committed):
    client = bw.anthropic()
    batch = client.messages.batches.create(requests=[
        {"custom_id": "native", "params": _anthropic_params(bw.claude, "SAY: passed through")},
        {"custom_id": "translated", "params": _anthropic_params(bw.gpt, "SAY: translated")},
        {"custom_id": "fails", "params": _anthropic_params(bw.claude, "FAIL: 400")},
    ])
    assert batch.type == "message_batch" and batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(24 * 3600, abs=5)

    ended = _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended")
    counts = ended.request_counts
    assert (counts.succeeded, counts.errored, counts.processing, counts.canceled, counts.expired) == (2, 1, 0, 0, 0)
    assert ended.ended_at is not None and ended.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")

    results = {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}
    assert results["native"].type == "succeeded" and results["native"].message.content[0].text == "passed through"
    assert results["translated"].message.content[0].text == "translated"
    assert results["translated"].message.type == "message" and results["translated"].message.usage.output_tokens > 0
    assert results["fails"].type == "errored"
    assert results["fails"].error.error.type == "invalid_request_error"

    rows = _ledger(batch.id, 3)
    assert len(rows) == 3, "one ledger row per item, tagged with the batch id"
    ok = [r for r in rows if r.outcome == "ok"]
    assert len(ok) == 2 and {r.alias for r in ok} == {bw.claude, bw.gpt}
    for row in ok:
        prices = {bw.claude: (3, 15), bw.gpt: (2, 8)}[row.alias]
        expected = (Decimal(row.input_tokens * prices[0] + row.output_tokens * prices[1]) / 1_000_000).quantize(
            Decimal("0.00000001"))
        assert row.cost_usd == expected and row.cost_usd > 0
    assert {r.ingress_api for r in rows} == {"anthropic"}
    assert {r.upstream_api for r in ok} == {"anthropic", "openai"}

    listed = client.messages.batches.list(limit=10)
    assert batch.id in [b.id for b in listed.data]
    deleted = client.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_openai_sdk_files_and_batches_end_to_end(bw, committed):
    client = bw.openai()
    lines = [
        {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": bw.gpt, "messages": [{"role": "user", "content": "SAY: alpha"}]}},
        {"custom_id": "b", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": bw.claude, "messages": [{"role": "user", "content": "SAY: beta"}], "max_tokens": 50}},
        {"custom_id": "c", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": bw.gpt, "messages": [{"role": "user", "content": "FAIL: 400"}]}},
    ]
    content = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    uploaded = client.files.create(file=("input.jsonl", content), purpose="batch")
    assert uploaded.object == "file" and uploaded.bytes == len(content) and uploaded.purpose == "batch"
    assert client.files.content(uploaded.id).read() == content
    assert uploaded.id in [f.id for f in client.files.list()]

    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"job": "eval"})
    assert batch.object == "batch" and batch.status in ("validating", "in_progress")
    assert batch.metadata == {"job": "eval"} and batch.request_counts.total == 3

    done = _wait(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    assert done.completed_at and done.in_progress_at and done.finalizing_at and done.output_file_id
    output = [orjson.loads(line) for line in client.files.content(done.output_file_id).read().splitlines()]
    by_id = {line["custom_id"]: line for line in output}
    assert set(by_id) == {"a", "b"}
    assert by_id["a"]["response"]["status_code"] == 200
    assert by_id["a"]["response"]["body"]["choices"][0]["message"]["content"] == "alpha"
    assert by_id["b"]["response"]["body"]["choices"][0]["message"]["content"] == "beta"  # Anthropic upstream
    errors = [orjson.loads(line) for line in client.files.content(done.error_file_id).read().splitlines()]
    assert [e["custom_id"] for e in errors] == ["c"] and errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["message"]

    rows = _ledger(batch.id, 3)
    assert len(rows) == 3 and sorted(r.outcome for r in rows) == ["client_error", "ok", "ok"]
    assert {r.request_id for r in rows if r.outcome == "ok"} == {by_id["a"]["response"]["request_id"],
                                                                   by_id["b"]["response"]["request_id"]}
    assert batch.id in [b.id for b in client.batches.list(limit=100)]
    assert client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_another_projects_key_gets_404_for_batches_and_files(bw, committed):
    mine = bw.anthropic().messages.batches.create(
        requests=[{"custom_id": "x", "params": _anthropic_params(bw.gpt, "SAY: mine")}])
    theirs = bw.anthropic(bw.other_key)
    with pytest.raises(anthropic.NotFoundError):
        theirs.messages.batches.retrieve(mine.id)
    with pytest.raises(anthropic.NotFoundError):
        theirs.messages.batches.cancel(mine.id)
    assert mine.id not in [b.id for b in theirs.messages.batches.list().data]

    uploaded = bw.openai().files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
    other = bw.openai(bw.other_key)
    for call in (lambda: other.files.retrieve(uploaded.id), lambda: other.files.content(uploaded.id),
                 lambda: other.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                              completion_window="24h")):
        with pytest.raises(openai.NotFoundError):
            call()


def test_a_bad_item_refuses_the_batch_naming_its_custom_id(bw, committed):
    client = bw.anthropic()
    good = {"custom_id": "good", "params": _anthropic_params(bw.gpt, "hi")}
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.batches.create(requests=[
            good, {"custom_id": "no-max-tokens", "params": {"model": bw.gpt, "messages": [{"role": "user", "content": "x"}]}}])
    assert "no-max-tokens" in bad.value.message and "max_tokens" in bad.value.message
    with pytest.raises(anthropic.BadRequestError) as unknown:
        client.messages.batches.create(requests=[good, {"custom_id": "m", "params": _anthropic_params("nope", "x")}])
    assert "'m'" in unknown.value.message and "nope" in unknown.value.message
    with pytest.raises(anthropic.BadRequestError) as twice:
        client.messages.batches.create(requests=[good, good])
    assert "duplicate custom_id 'good'" in twice.value.message
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[])

    oai = bw.openai()
    lines = [{"custom_id": "ok", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": bw.gpt, "messages": [{"role": "user", "content": "x"}]}},
             {"custom_id": "broken", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": bw.gpt, "messages": "not a list"}}]
    file = oai.files.create(file=("in.jsonl", b"\n".join(orjson.dumps(x) for x in lines)), purpose="batch")
    failed = oai.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert failed.status == "failed" and failed.failed_at
    error = failed.errors.data[0]
    assert error.line == 2 and "broken" in error.message
    with pytest.raises(openai.BadRequestError):
        oai.batches.create(input_file_id=file.id, endpoint="/v1/embeddings", completion_window="24h")
    with pytest.raises(openai.BadRequestError):
        oai.files.create(file=("in.jsonl", b"{}"), purpose="fine-tune")


def test_limits_refuse_a_batch_past_them_with_a_clear_error(bw, committed):
    """The test server takes 50 items and a 2 MB batch body (production: 100,000 items, 256 MB;
    tests/e2e/test_large_uploads.py sends larger ones)."""
    client = bw.anthropic()
    with pytest.raises(anthropic.BadRequestError) as too_many:
        client.messages.batches.create(
            requests=[{"custom_id": f"i{n}", "params": _anthropic_params(bw.gpt, "x")} for n in range(51)])
    assert "at most 50 requests" in too_many.value.message and "51" in too_many.value.message
    with pytest.raises(anthropic.APIStatusError) as too_big:
        client.messages.batches.create(
            requests=[{"custom_id": "big", "params": _anthropic_params(bw.gpt, "x" * 3_000_000)}])
    assert too_big.value.status_code == 413
    line = orjson.dumps({"custom_id": "x", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": bw.gpt, "messages": [{"role": "user", "content": "x"}]}})
    file = bw.openai().files.create(file=("in.jsonl", b"\n".join(line.replace(b'"x"', f'"x{n}"'.encode(), 1)
                                                                   for n in range(51))), purpose="batch")
    with pytest.raises(openai.BadRequestError) as lines:
        bw.openai().batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "at most 50 requests" in lines.value.message


def test_cancel_stops_dispatching_and_lets_running_items_finish(bw, committed):
    client = bw.anthropic()
    requests = [{"custom_id": f"slow-{n}", "params": _anthropic_params(bw.gpt, f"SAY: {n}\nSLOW: 600")}
                for n in range(24)]
    batch = client.messages.batches.create(requests=requests)
    _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.request_counts.processing < 24,
          timeout=20, what="the first item to start")  # (counts move when an item ends)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status in ("canceling", "ended") and canceling.cancel_initiated_at
    ended = _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended")
    counts = ended.request_counts
    assert counts.canceled > 0 and counts.succeeded > 0 and counts.succeeded + counts.canceled == 24
    results = list(client.messages.batches.results(batch.id))
    assert sorted(r.result.type for r in results).count("canceled") == counts.canceled
    assert len(_ledger(batch.id, counts.succeeded)) == counts.succeeded  # canceled items never ran


def test_rate_limited_items_wait_and_retry_instead_of_failing(bw, committed):
    from usage.models import UsageRecord

    secret = pw.key(pw.project(), max_concurrent=1)  # four at a time from the worker; one may run
    time.sleep(0.6)
    client = bw.anthropic(secret)
    batch = client.messages.batches.create(requests=[
        {"custom_id": f"r{n}", "params": _anthropic_params(bw.gpt, f"SAY: {n}\nSLOW: 200")} for n in range(4)])
    ended = _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended")
    assert ended.request_counts.succeeded == 4 and ended.request_counts.errored == 0
    ok = _wait(lambda: UsageRecord.objects.filter(batch_id=batch.id, outcome="ok").count(), lambda n: n >= 4,
               timeout=10, what="the ledger rows")  # written by the worker's ledger writer, a moment later
    assert ok == 4
    refused = UsageRecord.objects.filter(batch_id=batch.id, outcome="rate_limited").count()
    assert refused > 0, "the key's concurrency limit refused some items, and they were retried"


def test_simple_batch_endpoint_runs_both_shapes(bw, committed):
    headers = {"authorization": f"Bearer {bw.key}"}
    created = httpx.post(f"{bw.url}/v1/batch", headers=headers, json={
        "api": "openai",
        "requests": [{"custom_id": "one", "body": {"model": bw.claude, "messages": [{"role": "user", "content": "SAY: 1"}]}},
                     {"body": {"model": bw.gpt, "messages": [{"role": "user", "content": "SAY: 2"}]}}]}).json()
    assert created["status"] == "in_progress" and created["request_counts"]["total"] == 2
    done = _wait(lambda: httpx.get(f"{bw.url}/v1/batch/{created['id']}", headers=headers).json(),
                 lambda b: b["status"] == "ended")
    assert done["outcome"] == "completed" and done["request_counts"]["succeeded"] == 2
    assert [r["custom_id"] for r in done["results"]] == ["one", "request-1"]
    assert done["results"][1]["body"]["choices"][0]["message"]["content"] == "2"
    bad = httpx.post(f"{bw.url}/v1/batch", headers=headers, json={"api": "anthropic", "requests": [
        {"custom_id": "z", "body": {"model": bw.gpt, "messages": []}}]})
    assert bad.status_code == 400 and "'z'" in bad.json()["error"]["message"]
    assert httpx.get(f"{bw.url}/v1/batch/{created['id']}", headers={"authorization": f"Bearer {bw.other_key}"}
                     ).status_code == 404
    assert "/v1/batch" in httpx.get(f"{bw.url}/openapi.json").json()["paths"]


def test_a_killed_worker_loses_and_repeats_no_item(bw, committed):
    """SIGKILL the worker mid-batch, start another: the batch ends with every item run and recorded once. An
    item in flight at the kill is run again (its lost call may have reached the upstream: the ledger keeps it as
    `interrupted`, from the dead worker's spool); no other item reaches the upstream twice."""
    from batches.models import BatchItem
    from usage.models import UsageRecord

    client = bw.anthropic()
    marker = pw.unique("crash")
    n = 16
    batch = client.messages.batches.create(requests=[
        {"custom_id": f"c{i}", "params": _anthropic_params(bw.gpt, f"SAY: {marker}-{i}.\nSLOW: 700")} for i in range(n)])
    def statuses():
        return set(BatchItem.objects.filter(batch_id=batch.id).values_list("status", flat=True))

    _wait(statuses, lambda s: {"succeeded", "running", "pending"} <= s, timeout=30, what="items mid-batch")
    try:
        kill_worker(bw.workers.pop())
        at_kill = {i.custom_id: i.request_id for i in BatchItem.objects.filter(batch_id=batch.id, status="running")}
    finally:
        bw.workers.append(start_worker(bw.env, tmp_dir=bw.tmp, beat=True))
    assert at_kill and BatchItem.objects.filter(batch_id=batch.id, status="pending").exists(), "killed mid-batch"

    ended = _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended",
                  timeout=90)
    items = {i.custom_id: i for i in BatchItem.objects.filter(batch_id=batch.id)}
    lost = {cid for cid, i in items.items() if i.status == "errored"}  # answered and recorded, answer not saved
    assert lost <= set(at_kill) and ended.request_counts.succeeded == n - len(lost)
    results = list(client.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in results) == sorted(items)
    assert all(r.result.message.content[0].text == f"{marker}-{r.custom_id[1:]}."
               for r in results if r.custom_id not in lost)

    _wait(lambda: UsageRecord.objects.filter(batch_id=batch.id, outcome="ok").count(), lambda c: c >= n,
          timeout=15, what="the ledger rows")
    time.sleep(0.5)  # a row recorded twice would be in by now too
    rows = list(UsageRecord.objects.filter(batch_id=batch.id))
    ok = {}
    for row in rows:
        if row.outcome == "ok":
            ok.setdefault(row.request_id, []).append(row)
    assert all(len(same) == 1 for same in ok.values()), "no request recorded twice"
    assert {items[c].request_id for c in items if c not in lost} <= set(ok), "every answered item has its row"
    assert len(ok) == n, "each item recorded as answered exactly once"
    others = [r for r in rows if r.outcome != "ok"]
    assert all(r.outcome == "interrupted" and r.request_id in at_kill.values() for r in others), [
        (r.outcome, r.request_id) for r in others]

    calls = {}
    for request in bw.fake.requests:
        text = orjson.dumps(request.get("body")).decode()
        for i in range(n):
            if f"{marker}-{i}." in text:
                calls[f"c{i}"] = calls.get(f"c{i}", 0) + 1
    assert set(calls) == set(items)
    assert {cid for cid, count in calls.items() if count > 1} <= set(at_kill)
    assert UsageRecord.objects.filter(batch_id=batch.id, outcome="ok").count() == n


def test_expiry_marks_what_has_not_run_expired(bw, committed):
    from batches.models import Batch, BatchItem
    from django.utils import timezone

    client = bw.openai()
    lines = [{"custom_id": f"e{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": bw.gpt, "messages": [{"role": "user", "content": "SLOW: 1500"}]}} for i in range(12)]
    file = client.files.create(file=("in.jsonl", b"\n".join(orjson.dumps(x) for x in lines)), purpose="batch")
    batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    Batch.objects.filter(id=batch.id).update(expires_at=timezone.now())  # the window is over; beat ticks each second
    done = _wait(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "expired", timeout=30)
    assert done.expired_at and done.request_counts.failed > 0
    expired = BatchItem.objects.filter(batch_id=batch.id, status="expired").count()
    assert expired > 0 and done.request_counts.completed + expired == 12
    errors = [orjson.loads(line) for line in client.files.content(done.error_file_id).read().splitlines()]
    assert {e["error"]["code"] for e in errors} == {"batch_expired"} and len(errors) == expired


def _fake_batches(bw) -> list[dict]:
    return httpx.get(bw.fake.url + "/_fake/batches").json()


def _half_price(row, input_usd: int, output_usd: int) -> Decimal:
    full = Decimal(row.input_tokens * input_usd + row.output_tokens * output_usd) / 1_000_000
    return (full * Decimal("0.5")).quantize(Decimal("0.00000001"))


def test_a_batch_for_an_anthropic_upstream_goes_there_as_one_native_batch_at_the_batch_price(bw, committed):
    """Anthropic callers (pass-through) and OpenAI callers (translated) alike: one upstream Message Batch, polled
    by beat, its results mapped back by item and priced with the batch discount."""
    before = {b["id"] for b in _fake_batches(bw)}
    client = bw.anthropic()
    batch = client.messages.batches.create(requests=[
        {"custom_id": "n1", "params": _anthropic_params(bw.claude, "SAY: native one")},
        {"custom_id": "n2", "params": _anthropic_params(bw.claude, "FAIL: 400")}])
    ended = _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended")
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (1, 1)
    upstream = [b for b in _fake_batches(bw) if b["id"] not in before]
    assert [(b["kind"], b["requests"]) for b in upstream] == [("anthropic", 2)], "one native batch upstream"
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["n1"].message.content[0].text == "native one" and results["n1"].message.model == bw.claude
    assert results["n2"].type == "errored" and results["n2"].error.error.type == "invalid_request_error"
    rows = {r.outcome: r for r in _ledger(batch.id, 2)}
    assert set(rows) == {"ok", "client_error"} and rows["ok"].upstream_api == "anthropic"
    assert rows["ok"].cost_usd == _half_price(rows["ok"], 3, 15) and rows["ok"].cost_usd > 0

    oai = bw.openai()
    line = {"custom_id": "t1", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": bw.claude, "max_tokens": 30, "messages": [{"role": "user", "content": "SAY: translated"}]}}
    file = oai.files.create(file=("in.jsonl", orjson.dumps(line)), purpose="batch")
    translated = oai.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    done = _wait(lambda: oai.batches.retrieve(translated.id), lambda b: b.status == "completed")
    output = orjson.loads(oai.files.content(done.output_file_id).read())
    assert output["custom_id"] == "t1" and output["response"]["body"]["object"] == "chat.completion"
    assert output["response"]["body"]["choices"][0]["message"]["content"] == "translated"
    assert len([b for b in _fake_batches(bw) if b["id"] not in before]) == 2


def test_native_batch_spending_counts_against_the_budgets(bw, committed):
    """Native items are never admitted one by one: their cost, known when the results arrive, is added to the
    running budget totals of the key and its project (in Redis, shared by the server and the worker)."""
    import redis

    from proxy.policies.budgets import nanos

    project = pw.project(monthly_budget_usd=Decimal("50"))
    secret = pw.key(project, monthly_budget_usd=Decimal("40"))
    pw.wait_for_config(bw.url, secret, bw.claude)
    client = bw.anthropic(secret)
    client.messages.create(**_anthropic_params(bw.claude, "SAY: live"))  # starts the running totals
    store = redis.Redis.from_url(bw.env["REDIS_URL"])

    def totals() -> dict[str, int]:
        keys = [k.decode() for k in store.scan_iter(match="gh:b:budget:*:m:*") if f":p:{project.id}:" in k.decode()
                or f":k:{project.keys.get().id}:" in k.decode()]  # fmt: skip
        return {k: int(store.hget(k, "s") or 0) for k in keys}

    before = _wait(totals, lambda t: len(t) == 2 and all(t.values()), timeout=10, what="the live request's totals")
    batch = client.messages.batches.create(requests=[
        {"custom_id": f"b{i}", "params": _anthropic_params(bw.claude, f"SAY: native budget {i}")} for i in range(3)])
    _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended")
    spent = nanos(sum((r.cost_usd for r in _ledger(batch.id, 3)), Decimal(0)))
    assert spent > 0
    after = _wait(totals, lambda t: all(t[k] >= before[k] + spent for k in before), timeout=10, what="the totals")
    assert {k: after[k] - before[k] for k in before} == dict.fromkeys(before, spent)


def test_a_batch_for_a_batch_capable_openai_upstream_goes_there_through_files_and_batches(bw, committed):
    before = {b["id"] for b in _fake_batches(bw)}
    client = bw.anthropic()  # an Anthropic caller, translated to the OpenAI upstream's batch lines
    batch = client.messages.batches.create(requests=[
        {"custom_id": f"o{i}", "params": _anthropic_params(bw.native_gpt, f"SAY: openai native {i}")} for i in range(3)])
    ended = _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended")
    assert ended.request_counts.succeeded == 3
    assert [(b["kind"], b["requests"]) for b in _fake_batches(bw) if b["id"] not in before] == [("openai", 3)]
    results = {r.custom_id: r.result.message for r in client.messages.batches.results(batch.id)}
    assert {cid: m.content[0].text for cid, m in results.items()} == {f"o{i}": f"openai native {i}" for i in range(3)}
    rows = _ledger(batch.id, 3)
    assert len(rows) == 3 and {r.upstream_api for r in rows} == {"openai"} and {r.outcome for r in rows} == {"ok"}
    assert all(r.cost_usd == _half_price(r, 2, 8) and r.cost_usd > 0 for r in rows)


def test_canceling_a_native_batch_cancels_it_upstream(bw, committed):
    before = {b["id"] for b in _fake_batches(bw)}
    client = bw.anthropic()
    batch = client.messages.batches.create(requests=[
        {"custom_id": "h", "params": _anthropic_params(bw.claude, "SAY: held\nBATCH_HOLD: yes")}])
    _wait(lambda: [b for b in _fake_batches(bw) if b["id"] not in before], bool, timeout=20, what="the upstream batch")
    canceled = client.messages.batches.cancel(batch.id)
    assert canceled.processing_status == "canceling"
    _wait(lambda: [b["cancel"] for b in _fake_batches(bw) if b["id"] not in before], lambda c: c == [True],
          timeout=10, what="the cancel to reach the upstream")
    ended = _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.processing_status == "ended")
    assert ended.request_counts.succeeded + ended.request_counts.canceled == 1


def test_lists_page_as_the_sdks_expect(bw, committed):
    secret = pw.key(pw.project())  # a project of its own: only this test's batches
    client = bw.anthropic(secret)
    ids = [client.messages.batches.create(requests=[{"custom_id": "p", "params": _anthropic_params(bw.gpt, "x")}]).id
           for _ in range(3)]
    first = client.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == [ids[2], ids[1]] and first.has_more and first.last_id == ids[1]
    assert [b.id for b in client.messages.batches.list(limit=2)] == ids[::-1]  # the SDK pages on with after_id
    assert [b.id for b in client.messages.batches.list(limit=5, before_id=ids[1]).data] == [ids[2]]

    oai = bw.openai(secret)
    line = orjson.dumps({"custom_id": "p", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": bw.gpt, "messages": [{"role": "user", "content": "x"}]}})
    files = [oai.files.create(file=("f.jsonl", line), purpose="batch") for _ in range(2)]
    batch_ids = [oai.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id
                 for f in files]
    page = oai.batches.list(limit=1)
    assert [b.id for b in page.data] == [batch_ids[1]] and page.has_more
    assert [b.id for b in oai.batches.list(limit=1)] == batch_ids[::-1]  # the SDK pages on with after
    assert {f.id for f in files} <= {f.id for f in oai.files.list()}


def test_batch_items_leave_the_rest_of_the_keys_limit_to_live_requests(bw, committed):
    """With half of the key's RPM kept for live traffic (GATEWAY_BATCH_LIVE_RESERVE=0.5 here), the batch pauses
    once it has used its half, and a live request still gets through."""
    secret = pw.key(pw.project(), rpm_limit=20)
    client = bw.anthropic(secret)
    batch = client.messages.batches.create(requests=[
        {"custom_id": f"y{i}", "params": _anthropic_params(bw.gpt, f"SAY: {i}")} for i in range(20)])
    _wait(lambda: client.messages.batches.retrieve(batch.id), lambda b: b.request_counts.succeeded >= 10,
          timeout=20, what="the batch's half of the limit")
    time.sleep(1.5)  # the batch is paused: nothing more ends
    paused = client.messages.batches.retrieve(batch.id)
    assert paused.processing_status == "in_progress" and paused.request_counts.processing > 0
    assert paused.request_counts.succeeded <= 10 + 4, "at most the items in flight past the reserve"
    assert paused.request_counts.errored == 0
    live = client.messages.create(**_anthropic_params(bw.gpt, "SAY: live"))
    assert live.content[0].text == "live"
    client.messages.batches.cancel(batch.id)


def _most_at_once(items) -> int:
    events = sorted([(i.started_at, 1) for i in items] + [(i.ended_at, -1) for i in items], key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_a_projects_chunks_share_its_slots_across_workers(bw, committed):
    """Two workers, one slot per project here (GATEWAY_BATCH_PROJECT_CHUNKS=1): one project's batch never runs
    more than one chunk (4 items) at once, while another project's batch runs beside it."""
    from batches.models import BatchItem

    second = start_worker(bw.env, tmp_dir=bw.tmp)
    try:
        mine, theirs = bw.anthropic(pw.key(pw.project())), bw.anthropic(pw.key(pw.project()))
        requests = [{"custom_id": f"s{i}", "params": _anthropic_params(bw.gpt, f"SAY: {i}\nSLOW: 400")}
                    for i in range(16)]
        a = mine.messages.batches.create(requests=requests)
        b = theirs.messages.batches.create(requests=requests[:8])
        for client, batch in ((mine, a), (theirs, b)):
            _wait(lambda: client.messages.batches.retrieve(batch.id), lambda x: x.processing_status == "ended")
    finally:
        stop_worker(second)
    items_a, items_b = list(BatchItem.objects.filter(batch_id=a.id)), list(BatchItem.objects.filter(batch_id=b.id))
    assert all(i.status == "succeeded" for i in items_a + items_b)
    assert _most_at_once(items_a) <= 4, "one chunk of the project at a time"
    assert _most_at_once(items_a + items_b) > 4, "the other project's batch ran beside it"


def test_openai_sdk_cancel_ends_the_batch_cancelled_with_the_rest_in_the_error_file(bw, committed):
    client = bw.openai()
    lines = [{"custom_id": f"k{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": bw.gpt, "messages": [{"role": "user", "content": f"SAY: {i}\nSLOW: 500"}]}}
             for i in range(16)]
    file = client.files.create(file=("in.jsonl", b"\n".join(orjson.dumps(x) for x in lines)), purpose="batch")
    batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled") and cancelling.cancelling_at
    done = _wait(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "cancelled")
    assert done.cancelled_at and done.request_counts.total == 16
    cancelled = [orjson.loads(x) for x in client.files.content(done.error_file_id).read().splitlines()]
    assert cancelled and {c["error"]["code"] for c in cancelled} == {"batch_cancelled"}
    assert len(cancelled) + done.request_counts.completed == 16
