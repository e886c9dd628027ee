"""The embedded default: no broker configured (no REDIS_URL), so no Celery worker either. Creating a batch still
returns at once, and the batch runs in a background thread of the server process that created it."""

import time

import anthropic
import pytest

from tests.conftest import start_gateway, stop_gateway
from tests.e2e import policy_world as pw


@pytest.fixture(scope="module")
def embedded(django_db_setup, django_db_blocker, fake_upstream, tmp_path_factory):
    with django_db_blocker.unblock():
        alias = pw.route((pw.provider(fake_upstream), pw.unique("emb-gpt"), 0))
        secret = pw.key(pw.project())
        server = start_gateway(extra_env={"REDIS_URL": "", "CELERY_BROKER_URL": ""},
                               tmp_dir=tmp_path_factory.mktemp("embedded"))
        pw.wait_for_config(server.url, secret, alias)
        yield server, alias, secret
        stop_gateway(server)


def test_a_batch_runs_in_the_server_process_without_a_broker(embedded, committed):
    server, alias, secret = embedded
    client = anthropic.Anthropic(base_url=server.url, api_key=secret, max_retries=0)
    started = time.monotonic()
    batch = client.messages.batches.create(requests=[
        {"custom_id": f"e{i}", "params": {"model": alias, "max_tokens": 20,
                                          "messages": [{"role": "user", "content": f"SAY: {i}\nSLOW: 400"}]}}
        for i in range(6)])
    assert time.monotonic() - started < 2.0, "creating returns before the items have run"
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 6

    deadline = time.monotonic() + 30
    while (batch := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
        assert time.monotonic() < deadline, batch
        time.sleep(0.2)
    assert batch.request_counts.succeeded == 6
    texts = {r.custom_id: r.result.message.content[0].text for r in client.messages.batches.results(batch.id)}
    assert texts == {f"e{i}": str(i) for i in range(6)}
    assert "Traceback" not in server.log()
