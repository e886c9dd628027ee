"""The ledger spool (usage/ledger.py) on its own: what is kept until committed, what a replay makes of a dead
process's files, who may replay them, and that the typed row matches the table."""

import fcntl
import os
from datetime import timezone as tz
from decimal import Decimal

import orjson
import pytest

from usage import ledger_row, ledger_spool
from usage.ledger_row import LedgerRow
from usage.ledger_spool import Spool, find_orphans, read_segments


def row(request_id="req_1", **fields) -> LedgerRow:
    base = {"request_id": request_id, "ingress_api": "anthropic", "http_status": 200, "outcome": "ok"}
    return LedgerRow(**{**base, **fields})


def line(kind: str, r: LedgerRow) -> bytes:
    return ledger_row.encode(kind, r)


def test_the_typed_row_has_exactly_the_ledger_tables_columns():
    from usage.models import UsageRecord

    columns = {f.attname for f in UsageRecord._meta.concrete_fields} - {"id"}
    assert set(ledger_row.ROW_FIELDS) == columns


def test_a_misspelt_field_fails_where_the_row_is_built():
    with pytest.raises(TypeError):
        row(input_token=5)


def test_a_row_survives_the_round_trip_through_the_spool_exactly():
    original = row(cost_usd=Decimal("0.00012345"), saved_usd=Decimal("0.5"), ttft_ms=12, project_id=3, stream=True)
    back = ledger_row.row_from_json(orjson.loads(line("f", original))["row"])
    assert back == original
    assert back.created_at.tzinfo is not None and back.created_at.astimezone(tz.utc) == original.created_at


def test_fields_this_version_does_not_know_are_dropped_and_missing_ones_defaulted():
    data = orjson.loads(line("f", row()))["row"]
    data["from_a_newer_version"] = 1
    del data["reductions"]
    back = ledger_row.row_from_json(data)
    assert back.reductions == "" and back.request_id == "req_1"


def test_the_spool_empties_only_when_everything_in_it_is_committed(tmp_path):
    spool = Spool(tmp_path)
    path = spool.path(0)
    spool.append("req_a", line("s", row("req_a")), final=False)  # in flight
    done = spool.append("req_b", line("f", row("req_b")), final=True)
    spool.maintain()
    assert path.stat().st_size > 0  # nothing committed yet
    spool.committed([done])
    spool.maintain()
    assert path.stat().st_size > 0  # req_a is still in flight
    done = spool.append("req_a", line("f", row("req_a")), final=True)
    spool.maintain()
    assert path.stat().st_size > 0  # req_a finished but not committed
    spool.committed([done])
    spool.maintain()
    assert path.stat().st_size == 0 and spool.idle()
    spool.close()
    assert list(tmp_path.iterdir()) == []  # a clean close leaves nothing behind


def test_a_full_segment_rolls_over_and_goes_once_its_requests_are_committed(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_spool, "SEGMENT_BYTES", 1)
    spool = Spool(tmp_path)
    first = spool.append("req_a", line("f", row("req_a")), final=True)
    spool.append("req_b", line("s", row("req_b")), final=False)  # rolls: segment 1
    assert spool.path(0).exists() and spool.path(1).exists()
    spool.committed([first])
    spool.maintain()
    assert not spool.path(0).exists() and spool.path(1).exists()
    spool.close()  # req_b never finished: its segment stays for a replay
    assert spool.path(1).exists()


def test_a_snapshot_moving_to_a_new_segment_releases_the_old_one(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_spool, "SEGMENT_BYTES", 1)
    spool = Spool(tmp_path)
    spool.append("req_a", line("s", row("req_a")), final=False)
    spool.append("req_a", line("s", row("req_a", output_tokens=5)), final=False)  # segment 1 now holds req_a
    spool.maintain()
    assert not spool.path(0).exists()
    assert read_segments([spool.path(1)])[0].output_tokens == 5


def test_replay_takes_each_requests_last_record(tmp_path):
    path = tmp_path / "dead.000000.spool"
    started = row("req_a", outcome="interrupted", http_status=0, input_tokens=10)
    progressed = row("req_a", outcome="interrupted", http_status=200, input_tokens=10, output_tokens=7,
                     cost_usd=Decimal("0.001"))  # fmt: skip
    path.write_bytes(
        line("s", started) + line("s", row("req_b")) + line("s", progressed) + line("f", row("req_b", output_tokens=3))
        + line("s", row("req_d")) + ledger_row.encode("x", request_id="req_d")
        + b'{"k":"f","row":{"request_id":"req_e","ingress_a'  # cut by a crash mid-line
    )
    rows = {r.request_id: r for r in read_segments([path])}
    assert set(rows) == {"req_a", "req_b"}  # req_d was discarded (token counting), req_e is unreadable
    a, b = rows["req_a"], rows["req_b"]
    assert (a.outcome, a.http_status, a.output_tokens, a.cost_usd) == ("interrupted", 200, 7, Decimal("0.001"))
    assert a.error_type == "api_error" and "ended before" in a.error_message
    assert (b.outcome, b.output_tokens) == ("ok", 3)


def test_only_the_spools_of_dead_processes_are_adopted(tmp_path):
    alive = Spool(tmp_path)  # holds its lock like a running process
    alive.append("req_alive", line("f", row("req_alive")), final=True)
    dead_lock = tmp_path / "4242-dead.lock"
    dead_lock.touch()
    (tmp_path / "4242-dead.000000.spool").write_bytes(line("f", row("req_dead")))
    (tmp_path / "4343-nolock.000000.spool").write_bytes(line("s", row("req_nolock")))

    orphans = {o.owner: o for o in find_orphans(tmp_path, own=None)}
    assert set(orphans) == {"4242-dead", "4343-nolock"}
    assert [r.request_id for r in orphans["4242-dead"].rows] == ["req_dead"]
    assert orphans["4343-nolock"].rows[0].outcome == "interrupted"
    assert find_orphans(tmp_path, own=None) == []  # we hold them now: nobody else may replay them
    for orphan in orphans.values():
        orphan.done()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{alive.owner}.lock", f"{alive.owner}.000000.spool"]
    )
    alive.close()


def test_a_lock_file_is_never_visible_unlocked(tmp_path):
    spool = Spool(tmp_path)
    fd = os.open(tmp_path / f"{spool.owner}.lock", os.O_RDWR)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    spool.close()
