"""The bill reconciliation's rules without a server: model names compared without their date suffix, the CSV
format of docs/reconciliation.md (and its refusals, with the line), the tolerance, and a vendor's error body
turned into a message that never carries the key."""

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import httpx
import pytest

from usage import bill_reports
from usage.bill_reports import CsvProblem, csv_read, model_key
from usage.models import BillLine
from usage.reconcile import over_tolerance


@pytest.mark.parametrize("name,key", [("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"), ("gpt-4o-2024-08-06", "gpt-4o"),
                                      ("gpt-4o", "gpt-4o"), ("o3-mini", "o3-mini"), ("", "(not a model)"),
                                      (None, "(not a model)"), ("deepseek-v3-0324", "deepseek-v3-0324")])  # fmt: skip
def test_models_compare_without_their_date_suffix(name, key):
    assert model_key(name) == key


def test_csv_rows_are_read_summed_and_empty_cells_are_not_given():
    rows = csv_read("\ufeffDate,Model,input_tokens,cost_usd,notes\n2026-12-01,deepseek-chat,100,$1.50,x\n"
                    "2026-12-01,deepseek-chat,20,\"1,000.25\",\n2026-12-02,deepseek-chat,,,\n")  # fmt: skip
    by_day = {r.day: r for r in rows}
    assert by_day[date(2026, 12, 1)].input_tokens == 120 and by_day[date(2026, 12, 1)].cost_usd == Decimal("1001.75")
    assert by_day[date(2026, 12, 1)].output_tokens is None
    assert by_day[date(2026, 12, 2)].input_tokens is None and by_day[date(2026, 12, 2)].cost_usd is None


@pytest.mark.parametrize("text,problem", [
    ("model,cost_usd\nx,1\n", "line 1: the header needs at least the columns date and model"),
    ("date,model\n2026-12-01,\n", "line 2: model is empty"),
    ("date,model,input_tokens\n2026-12-01,x,1.5\n", "line 2: input_tokens '1.5' is not a whole number"),
    ("date,model,cost_usd\n2026-12-01,x,1\n2026-12-01,x,NaN\n", "line 3: cost_usd 'NaN' is not a number"),
    ("date,model,cost_usd\n2026-12-01,x,abc\n", "line 2: cost_usd 'abc' is not a number"),
])  # fmt: skip
def test_a_bad_csv_is_refused_with_its_line(text, problem):
    with pytest.raises(CsvProblem, match=problem.replace("(", r"\(").replace(")", r"\)")):
        csv_read(text)


def _line(bill_cost, ledger_cost, bill_in=None, ledger_in=0):
    return BillLine(bill_cost_usd=None if bill_cost is None else Decimal(bill_cost), ledger_cost_usd=Decimal(ledger_cost),
                    bill_input_tokens=bill_in, ledger_input_tokens=ledger_in)  # fmt: skip


@pytest.mark.parametrize("line,over", [
    (_line("100.00", "99.50"), False),      # $0.50 is 0.5%: within 1%
    (_line("100.00", "98.90"), True),       # $1.10 is 1.1%
    (_line("0.50", "0.505"), False),        # 1% off but under a cent
    (_line("0.50", "0.52"), True),          # 2 cents, 4%
    (_line(None, "5.00"), False),           # no cost given: not compared
    (_line(None, "0", 1000, 1010), False),  # tokens 1% off
    (_line(None, "0", 1000, 1011), True),
    (_line("0", "0", 0, 5), True),          # billed nothing, the ledger counted something
])  # fmt: skip
def test_the_tolerance_is_one_percent_and_a_cent(settings, line, over):
    settings.GATEWAY_RECONCILE_TOLERANCE_PERCENT, settings.GATEWAY_RECONCILE_TOLERANCE_USD = 1.0, 0.01
    assert over_tolerance(line) is over


def test_a_vendor_error_names_the_status_and_its_message_not_the_key():
    secret = "sk-ant-admin-secret-0000"
    source = SimpleNamespace(kind="anthropic_admin", admin_key=secret, reports_url="https://reports.test", api_key_id="",
                             project_id="", get_kind_display=lambda: "Anthropic")  # fmt: skip

    def handler(request):
        assert request.headers["x-api-key"] == secret and request.headers["anthropic-version"] == "2023-06-01"
        return httpx.Response(403, json={"type": "error", "error": {"type": "permission_error",
                                                                      "message": "admin keys only"}})  # fmt: skip

    with httpx.Client(transport=httpx.MockTransport(handler)) as client, pytest.raises(bill_reports.BillFetchError) as e:
        bill_reports.fetch(source, date(2026, 12, 1), date(2026, 12, 2), client)
    assert str(e.value) == "403 from /v1/organizations/usage_report/messages: admin keys only"
    assert secret not in str(e.value)
