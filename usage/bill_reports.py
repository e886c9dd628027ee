"""The providers' own usage and cost reports, read into one shape: Figures per day (UTC) x model. Pure readers
of the vendors' wire formats over one sync httpx.Client (they run in Celery or a command, never on a request).

    kind              reads                                                           key
    anthropic_admin   GET /v1/organizations/usage_report/messages (tokens)            Admin API key (sk-ant-admin…)
                      GET /v1/organizations/cost_report (cost, in cents)              as x-api-key
    openai_admin      GET /v1/organization/usage/completions (tokens)                 Admin key, Bearer
                      GET /v1/organization/costs (cost, in USD)
    csv               a file in the format of docs/reconciliation.md (csv_read)       -

Both APIs answer pages of day buckets ({"data": [...], "has_more", "next_page"}); every page is followed.
Token figures are the ledger's: `input` is uncached input (OpenAI's input_tokens include cached and cache-write
tokens: subtracted here), cache writes are 5-minute + 1-hour. Models are compared without their date suffix
(model_key): the vendors report the dated snapshot a client's alias resolved to.

To add a vendor: a `_<kind>(source, first, last, client)` function returning Figures, one line in REPORTS, a
choice in usage.models.BillSource.KIND_CHOICES, and its endpoints in the fake upstream
(tests/fakes/upstream/wire_reports.py).
"""

import csv
import io
import re
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

import httpx

ANTHROPIC_VERSION = "2023-06-01"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
OTHER = "(not a model)"  # costs the vendor bills apart from any model's tokens (web search, code execution…)
_DATED = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


class BillFetchError(Exception):
    """A report could not be read (HTTP error, unexpected body). The message never carries the key."""


@dataclass(slots=True)
class Figures:
    """A provider's figures for one day x model; None = its report does not give that number."""

    day: date
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: Decimal | None = None

    def add(self, other: "Figures") -> None:
        for f in fields(self)[2:]:
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if theirs is not None:
                setattr(self, f.name, theirs if mine is None else mine + theirs)


def model_key(name: str | None) -> str:
    """The model a report line counts for: its date suffix removed (claude-sonnet-4-5-20250929 ->
    claude-sonnet-4-5, gpt-4o-2024-08-06 -> gpt-4o), as the ledger's remote model is compared too."""
    return _DATED.sub("", (name or "").strip()) or OTHER


def merge(items) -> list[Figures]:
    """Figures of the same day x model summed into one."""
    merged: dict[tuple[date, str], Figures] = {}
    for f in items:
        key = (f.day, f.model)
        if key in merged:
            merged[key].add(f)
        else:
            merged[key] = Figures(f.day, f.model)
            merged[key].add(f)
    return list(merged.values())


def fetch(source, first: date, last: date, client: httpx.Client | None = None) -> list[Figures]:
    """The provider's figures for the days first..last (inclusive) of a BillSource with an API."""
    reader = REPORTS.get(source.kind)
    if reader is None:
        raise BillFetchError(f"{source.get_kind_display()} has no API to fetch from")
    if not source.admin_key:
        raise BillFetchError("no admin key: add the vendor's admin (report) key to the bill source")
    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT)
    try:
        return merge(reader(source, first, last, client))
    except httpx.HTTPError as e:
        raise BillFetchError(f"{type(e).__name__} reaching {_base(source)}") from None
    except (KeyError, TypeError, ValueError, InvalidOperation) as e:
        raise BillFetchError(f"unexpected report body ({type(e).__name__}: {e})") from None
    finally:
        if own:
            client.close()


def _base(source) -> str:
    return (source.reports_url or source.account.provider.base_url).rstrip("/")


def _pages(client: httpx.Client, url: str, headers: dict, params: list[tuple[str, str]]):
    """Every bucket of every page (has_more / next_page, as both vendors page)."""
    page = None
    while True:
        response = client.get(url, params=params + ([("page", page)] if page else []), headers=headers)
        if response.status_code != 200:
            raise BillFetchError(f"{response.status_code} from {httpx.URL(url).path}: {_message(response)}")
        body = response.json()
        yield from body["data"]
        page = body.get("next_page")
        if not body.get("has_more") or not page:
            return


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or error)[:200]
    except ValueError:
        return response.text[:200]


def _day(bucket: dict, key: str) -> date:
    value = bucket[key]
    if isinstance(value, (int, float)):  # OpenAI: Unix seconds
        return datetime.fromtimestamp(value, UTC).date()
    return date.fromisoformat(value[:10])  # Anthropic: RFC 3339


def _results(bucket: dict) -> list:
    return bucket.get("results", bucket.get("result")) or []  # "results" on the wire; "result" in older specs


# --- Anthropic ------------------------------------------------------------------------------------------------


def _anthropic(source, first: date, last: date, client: httpx.Client) -> list[Figures]:
    headers = {"x-api-key": source.admin_key, "anthropic-version": ANTHROPIC_VERSION}
    span = [("starting_at", f"{first.isoformat()}T00:00:00Z"),
            ("ending_at", f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z"), ("bucket_width", "1d")]  # fmt: skip
    usage = [*span, ("group_by[]", "model"), ("limit", "31")]
    usage += [("api_key_ids[]", source.api_key_id)] if source.api_key_id else []
    usage += [("workspace_ids[]", source.project_id)] if source.project_id else []
    out = []
    for bucket in _pages(client, _base(source) + "/v1/organizations/usage_report/messages", headers, usage):
        for r in _results(bucket):
            creation = r.get("cache_creation") or {}
            out.append(Figures(
                _day(bucket, "starting_at"), model_key(r.get("model")), input_tokens=r["uncached_input_tokens"],
                output_tokens=r["output_tokens"], cache_read_tokens=r.get("cache_read_input_tokens") or 0,
                cache_write_tokens=(creation.get("ephemeral_5m_input_tokens") or 0)
                + (creation.get("ephemeral_1h_input_tokens") or 0),
            ))  # fmt: skip
    costs = [*span, ("group_by[]", "description"), ("limit", "31")]
    costs += [("group_by[]", "workspace_id")] if source.project_id else []
    for bucket in _pages(client, _base(source) + "/v1/organizations/cost_report", headers, costs):
        for r in _results(bucket):
            if source.project_id and r.get("workspace_id") != source.project_id:
                continue
            cents = Decimal(str(r["amount"]))  # "lowest currency units": cents, as a decimal string
            out.append(Figures(_day(bucket, "starting_at"), model_key(r.get("model")), cost_usd=cents / 100))
    return out


# --- OpenAI ---------------------------------------------------------------------------------------------------


def _openai(source, first: date, last: date, client: httpx.Client) -> list[Figures]:
    headers = {"Authorization": f"Bearer {source.admin_key}"}
    start = int(datetime.combine(first, time.min, UTC).timestamp())
    span = [("start_time", str(start)), ("end_time", str(start + 86400 * ((last - first).days + 1))),
            ("bucket_width", "1d")]  # fmt: skip
    projects = [("project_ids[]", source.project_id)] if source.project_id else []
    usage = [*span, ("group_by[]", "model"), ("limit", "31"), *projects]
    usage += [("api_key_ids[]", source.api_key_id)] if source.api_key_id else []
    out = []
    for bucket in _pages(client, _base(source) + "/organization/usage/completions", headers, usage):
        for r in _results(bucket):
            cached, written = r.get("input_cached_tokens") or 0, r.get("input_cache_write_tokens") or 0
            out.append(Figures(
                _day(bucket, "start_time"), model_key(r.get("model")), input_tokens=r["input_tokens"] - cached - written,
                output_tokens=r["output_tokens"], cache_read_tokens=cached, cache_write_tokens=written,
            ))  # fmt: skip
    costs = [*span, ("group_by[]", "line_item"), ("limit", "180"), *projects]
    for bucket in _pages(client, _base(source) + "/organization/costs", headers, costs):
        for r in _results(bucket):
            amount = r.get("amount") or {}
            if (amount.get("currency") or "usd").lower() != "usd":
                raise ValueError(f"cost in {amount.get('currency')}, not USD")
            line = r.get("line_item") or ""  # "gpt-4o-2024-08-06, input": the model, then what was billed
            model = model_key(line.split(",")[0]) if "," in line else OTHER
            out.append(Figures(_day(bucket, "start_time"), model, cost_usd=Decimal(str(amount.get("value") or 0))))
    return out


REPORTS = {"anthropic_admin": _anthropic, "openai_admin": _openai}


# --- CSV ------------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("date", "model", *TOKEN_FIELDS, "cost_usd")


class CsvProblem(ValueError):
    """A CSV that cannot be read; str() names the line."""


def csv_read(text: str) -> list[Figures]:
    """Rows of docs/reconciliation.md's CSV format: `date` (YYYY-MM-DD, UTC) and `model` required, the token
    columns and `cost_usd` optional (a missing column or an empty cell: not given). Rows of one day x model are
    summed."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = {(name or "").strip().lower(): name for name in reader.fieldnames or ()}
    if "date" not in header or "model" not in header:
        raise CsvProblem("line 1: the header needs at least the columns date and model")
    out = []
    for row in reader:
        cell = {column: (row.get(header[column]) or "").strip() for column in CSV_COLUMNS if column in header}
        if not any(cell.values()):
            continue
        out.append(_csv_row(cell, reader.line_num))
    return merge(out)


def _csv_row(cell: dict, line: int) -> Figures:
    try:
        day = date.fromisoformat(cell["date"])
    except ValueError:
        raise CsvProblem(f"line {line}: date {cell['date']!r} is not YYYY-MM-DD") from None
    if not cell["model"]:
        raise CsvProblem(f"line {line}: model is empty")
    figures = Figures(day, model_key(cell["model"]))
    for name in TOKEN_FIELDS:
        if cell.get(name):
            if not cell[name].isdigit():
                raise CsvProblem(f"line {line}: {name} {cell[name]!r} is not a whole number")
            setattr(figures, name, int(cell[name]))
    if cell.get("cost_usd"):
        try:
            figures.cost_usd = Decimal(cell["cost_usd"].lstrip("$").replace(",", ""))
        except InvalidOperation:
            raise CsvProblem(f"line {line}: cost_usd {cell['cost_usd']!r} is not a number") from None
        if not figures.cost_usd.is_finite():
            raise CsvProblem(f"line {line}: cost_usd {cell['cost_usd']!r} is not a number")
    return figures
