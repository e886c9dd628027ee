"""The ledger writer against the test database, driven step by step (no thread): replay is idempotent on the
request id, a failing database keeps rows (never drops them), a row the database refuses is kept apart."""

from decimal import Decimal

import uuid

import orjson
import pytest
from django.db import OperationalError

from usage import ledger
from usage.ledger import Writer
from usage.ledger_row import LedgerRow, encode

# The writer commits, as it does in a server, so these tests work outside a test transaction (`committed`) and
# remove their own rows after. Not `django_db(transaction=True)`: its flush after each test would wipe the
# committed end-to-end world the other tests share.
P = f"lw{uuid.uuid4().hex[:8]}_"


@pytest.fixture(autouse=True)
def own_rows(django_db_setup, committed):
    yield
    from usage.models import UsageRecord

    UsageRecord.objects.filter(request_id__startswith=P).delete()


def row(request_id, **fields) -> LedgerRow:
    base = {"request_id": request_id, "ingress_api": "openai", "http_status": 200, "outcome": "ok"}
    return LedgerRow(**{**base, **fields})


def dead_spool(directory, *records: tuple[str, LedgerRow]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "999-dead.lock").touch()
    (directory / "999-dead.000000.spool").write_bytes(b"".join(encode(kind, r) for kind, r in records))


def ids_in_ledger() -> list[str]:
    from usage.models import UsageRecord

    ours = UsageRecord.objects.filter(request_id__startswith=P).values_list("request_id", flat=True)
    return sorted(r.removeprefix(P) for r in ours)


def test_a_replay_inserts_what_is_missing_and_nothing_twice(tmp_path):
    from usage.models import UsageRecord

    UsageRecord.objects.create(request_id=P + "req_done", ingress_api="openai", http_status=200, outcome="ok")
    dead_spool(
        tmp_path,
        ("f", row(P + "req_done")),  # committed before the crash, spool not yet truncated
        ("f", row(P + "req_new", output_tokens=4, cost_usd=Decimal("0.00000032"))),
        ("s", row(P + "req_killed", outcome="interrupted", input_tokens=9)),
    )
    writer = Writer(tmp_path)
    writer.adopt_orphans()
    writer.write_backlog()
    assert ids_in_ledger() == ["req_done", "req_killed", "req_new"]
    assert UsageRecord.objects.get(request_id=P + "req_new").cost_usd == Decimal("0.00000032")
    killed = UsageRecord.objects.get(request_id=P + "req_killed")
    assert (killed.outcome, killed.input_tokens) == ("interrupted", 9)
    assert not list(tmp_path.glob("999-dead.*"))  # replayed: gone
    writer.adopt_orphans()
    writer.write_backlog()
    assert ids_in_ledger() == ["req_done", "req_killed", "req_new"]
    writer.finish()


def test_rows_are_kept_while_the_database_fails_and_written_once_it_is_back(tmp_path, monkeypatch):
    writer = Writer(tmp_path)
    real_insert = ledger._insert
    calls = []

    def flaky(rows, check_existing):
        calls.append(check_existing)
        if len(calls) <= 2:
            real_insert(rows, check_existing)  # the first attempt commits, then the connection "breaks"
            raise OperationalError("server closed the connection unexpectedly")
        real_insert(rows, check_existing)

    monkeypatch.setattr(ledger, "_insert", flaky)
    for i in range(3):
        writer.backlog.append((row(P + f"req_{i}"), None))
    writer.write_backlog()
    assert len(writer.backlog) == 3 and writer.status()["status"] == "degraded"
    assert "closed the connection" in writer.status()["error"]
    writer.write_backlog()
    writer.write_backlog()
    assert writer.backlog == [] and writer.status()["status"] == "ok"
    assert calls == [False, True, True]  # retries check what an unclear commit already wrote
    assert ids_in_ledger() == ["req_0", "req_1", "req_2"]  # once each
    writer.finish()


def test_a_row_whose_project_is_gone_is_written_without_it_and_bad_rows_are_kept_apart(tmp_path, monkeypatch):
    from usage.models import UsageRecord

    monkeypatch.setattr(ledger, "spool_dir", lambda: tmp_path)
    writer = Writer(tmp_path)
    writer.backlog += [(row(P + "req_orphan", project_id=987654), None), (row(P + "req_fine"), None),
                       (row(P + "req_bad", input_tokens=-1), None)]  # fmt: skip
    writer.write_backlog()
    assert writer.backlog == []
    assert UsageRecord.objects.get(request_id=P + "req_orphan").project_id is None
    assert UsageRecord.objects.filter(request_id=P + "req_fine").exists()
    rejected = [orjson.loads(line) for line in (tmp_path / "rejected.jsonl").read_bytes().splitlines()]
    assert [r["row"]["request_id"] for r in rejected] == [P + "req_bad"]
    writer.finish()
