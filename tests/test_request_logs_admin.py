"""Request logs in the admin, the config file and the nightly job (docs/request-logs.md): a conversation rendered
readably through the real admin HTML, bodies hidden from a finance-only user, every list query through an index
(planned as for a million logs on PostgreSQL), retention in batches, the size cap, the setting's one rule set."""

from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts import keys
from accounts.config import ConfigError, config_parse
from accounts.models import Project
from tests import test_admin_query_plans as plans
from tests.test_finance_group import finance_client  # noqa: F401  (a fixture: a Finance-group user, logged in)
from usage import request_logs
from usage.ledger_row import LedgerRow
from usage.models import RequestLog, UsageRecord

pytestmark = pytest.mark.django_db

TABLE = RequestLog._meta.db_table
REQUEST = {
    "model": "claude-x", "max_tokens": 100, "system": "You are a careful assistant.",
    "tools": [{"name": "read_file", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": "What is in notes.txt?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should read the file first.", "signature": "sig"},
            {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "notes.txt"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "buy milk"}]},
    ],
}  # fmt: skip
RESPONSE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "The note says: buy milk."}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5}}  # fmt: skip


def _row(project, key, request_id="req_log1", full=True, max_bytes=262144, **doc) -> LedgerRow:
    log = {"full": full, "max_bytes": max_bytes, "meta": {"tools": ["read_file"], "stop_reason": "end_turn",
                                                          "tool_calls": []}}  # fmt: skip
    if full:
        log |= {"request": REQUEST, "response": RESPONSE, **doc}
    return LedgerRow(request_id=request_id, ingress_api="anthropic", http_status=200, outcome="ok",
                     project_id=project.id, api_key_id=key.id, requested_model="claude-x", request_log=log)  # fmt: skip


@pytest.fixture
def logged():
    project = Project.objects.create(slug="team", name="Team", request_log_mode="full")
    key, _ = keys.key_create(project=project, name="laptop")
    row = _row(project, key)
    UsageRecord.objects.create(request_id=row.request_id, project=project, api_key=key, ingress_api="anthropic",
                               http_status=200, outcome="ok")  # fmt: skip
    request_logs.logs_insert([row])
    return RequestLog.objects.get(request_id=row.request_id)


def test_the_admin_renders_the_conversation_with_thinking_collapsed_and_the_raw_json(admin_client, logged):
    page = admin_client.get(reverse("admin:usage_requestlog_change", args=[logged.pk])).content.decode()
    assert "You are a careful assistant." in page  # system
    assert "What is in notes.txt?" in page and "The note says: buy milk." in page  # turns and the answer
    assert '<details class="thinking"><summary>thinking</summary><pre>I should read the file first.</pre>' in page
    assert "tool call <b>read_file</b>" in page and "tool result for toolu_1" in page and "buy milk" in page
    assert '<details id="raw-json">' in page and "&quot;stop_reason&quot;: &quot;end_turn&quot;" in page
    assert "Stop reason:</b> end_turn" in page


def test_the_ledger_row_and_the_live_feed_link_to_the_log(admin_client, logged):
    record = UsageRecord.objects.get(request_id=logged.request_id)
    link = reverse("admin:usage_requestlog_by_request", args=[logged.request_id])
    assert link in admin_client.get(reverse("admin:usage_usagerecord_change", args=[record.pk])).content.decode()
    assert admin_client.get(link)["Location"] == reverse("admin:usage_requestlog_change", args=[logged.pk])
    live = admin_client.get(reverse("admin:usage_live")).content.decode()
    assert reverse("admin:usage_requestlog_by_request", args=["REQUEST_ID"]) in live
    missing = admin_client.get(reverse("admin:usage_requestlog_by_request", args=["req_none"]))
    assert missing["Location"].endswith("?q=req_none")  # no log: the ledger row


def test_a_finance_user_sees_the_metadata_never_a_body(finance_client, logged):
    listing = finance_client.get(reverse("admin:usage_requestlog_changelist"))
    assert listing.status_code == 200 and logged.request_id in listing.content.decode()
    page = finance_client.get(reverse("admin:usage_requestlog_change", args=[logged.pk])).content.decode()
    assert "end_turn" in page and "may see its metadata only" in page
    for secret in ("notes.txt", "buy milk", "careful assistant", "raw-json"):
        assert secret not in page


def test_the_size_cap_cuts_the_longest_strings_with_a_marker(logged):
    project, key = logged.project, logged.api_key
    long = {"request": {**REQUEST, "messages": [{"role": "user", "content": "x" * 50_000}]}}
    request_logs.logs_insert([_row(project, key, "req_big", max_bytes=2048, **long)])
    entry = RequestLog.objects.get(request_id="req_big")
    assert entry.truncated and entry.body_bytes <= 2048
    bodies = request_logs.bodies(entry)
    text = bodies["request"]["messages"][0]["content"]
    assert text.startswith("xxxx") and "[cut by the request log size cap:" in text
    assert bodies["response"]["stop_reason"] == "end_turn"  # short values kept whole


def test_a_document_too_big_even_with_short_strings_keeps_the_head_of_its_json():
    many = {"request": {"messages": [{"role": "user", "content": "hi"}] * 2000}, "response": None}
    raw, truncated = request_logs.fit(many, 1024)
    kept = orjson.loads(raw)["cut"]
    assert truncated and len(raw) <= 1024
    assert kept.startswith('{"request":{"messages":[{"role":"user"') and "[cut by the request log size cap:" in kept
    assert request_logs.fit({"request": {"a": "b"}}, 1024) == (b'{"request":{"a":"b"}}', False)


def test_retention_deletes_past_each_projects_days_in_batches(logged, monkeypatch):
    project, key = logged.project, logged.api_key
    other = Project.objects.create(slug="long", name="Long", request_log_mode="full", request_log_retention_days=90)
    now = timezone.now()
    request_logs.logs_insert([_row(project, key, f"req_old{i}", full=False) for i in range(7)])
    request_logs.logs_insert([_row(other, key, "req_other", full=False)])
    RequestLog.objects.exclude(request_id="req_log1").update(created_at=now - timedelta(days=31))
    monkeypatch.setattr(request_logs, "DELETE_BATCH", 3)
    from usage import tasks

    assert tasks.request_logs_expire() == 7  # the task is thin: request_logs.expire
    assert set(RequestLog.objects.values_list("request_id", flat=True)) == {"req_log1", "req_other"}  # 30 / 90 days
    Project.objects.filter(pk=other.pk).delete()
    assert request_logs.expire() == 1  # a deleted project's logs go at the next run


def test_the_config_file_sets_request_logs_with_the_fields_rules():
    config = config_parse({"projects": [{"slug": "p", "request_logs": {"mode": "full", "retention_days": 7}}]},
                          environ={})  # fmt: skip
    assert config.projects[0].request_logs == {"request_log_mode": "full", "request_log_retention_days": 7,
                                               "request_log_max_bytes": 262144}  # fmt: skip
    with pytest.raises(ConfigError) as error:
        config_parse({"projects": [{"slug": "p", "request_logs": {"mode": "all", "retention_days": 0,
                                                                  "max_bytes": 10, "x": 1}}]}, environ={})  # fmt: skip
    problems = "\n".join(error.value.problems)
    assert "request_logs.mode: invalid mode 'all'" in problems and "request_logs.x: unknown field" in problems
    assert "retention_days: Ensure this value is greater than or equal to 1." in problems
    assert "max_bytes: Ensure this value is greater than or equal to 1024." in problems


def test_the_setting_reaches_the_request_path_only_when_on():
    project = Project.objects.create(slug="p", name="P")
    key, _ = keys.key_create(project=project, name="k")
    assert keys.key_by_id(key.id).request_log is None  # off: the request pays one `is None`
    Project.objects.filter(pk=project.pk).update(request_log_mode="metadata", request_log_max_bytes=4096)
    assert keys.key_by_id(key.id).request_log == keys.RequestLogSetting(full=False, max_bytes=4096)


# --- every list query through an index, as for a million logs ------------------------------------------------


@pytest.fixture
def many_logs(logged, monkeypatch):
    owners = [(logged.project, logged.api_key)]
    for n in range(4):  # several projects and keys, so no filter matches (almost) every log
        project = Project.objects.create(slug=f"p{n}", name=f"P{n}", request_log_mode="metadata")
        owners += [(project, keys.key_create(project=project, name=f"k{m}")[0]) for m in range(2)]
    rows = [_row(*owners[i % len(owners)], f"req_{i}", full=False) for i in range(3000)]
    request_logs.logs_insert(rows)
    now = timezone.now()
    for days in range(0, 400, 4):  # spread over a year
        fresh = RequestLog.objects.filter(created_at__gt=now - timedelta(minutes=5))
        ids = list(fresh.values_list("id", flat=True)[:30])
        RequestLog.objects.filter(id__in=ids).update(created_at=now - timedelta(days=days, minutes=10),
                                                     http_status=429 if days % 3 else 200)  # fmt: skip
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TABLE}")
            cursor.execute(f"UPDATE pg_class SET reltuples = reltuples * 1000 WHERE oid = '{TABLE}'::regclass")
    monkeypatch.setattr(plans, "LEDGER", TABLE)  # the plan check of tests/test_admin_query_plans.py, on this table
    return logged


def test_every_request_log_list_reads_through_an_index(admin_client, many_logs):
    base = reverse("admin:usage_requestlog_changelist")
    queries = ["", "?created=7d", f"?project__id__exact={many_logs.project_id}",
               f"?api_key__id__exact={many_logs.api_key_id}",
               "?model=claude-x", "?http_status=429", "?http_status=200&created=30d", "?q=req_17", "?p=3",
               f"?project__id__exact={many_logs.project_id}&created_from=2020-01-01&created_to=2099-01-01"]  # fmt: skip
    for query in queries:
        response, sql = plans.assert_no_ledger_scan(admin_client, base + query)
        assert sql, query  # the check saw the list's queries
    assert "req_17" in admin_client.get(base + "?q=req_17").content.decode()
    plans.assert_no_ledger_scan(admin_client, reverse("admin:usage_requestlog_change", args=[many_logs.pk]))
