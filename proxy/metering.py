"""What the ledger learns about one request, gathered as the request goes, written once at its end.

`Call.finish` is the request's last step, whatever happened: it settles the request's policies (limits and
budget, proxy.policies) with the exact cost and hands one row to the ledger. It runs once; later calls do
nothing, so no request is ever counted twice.

Before that, the row so far is spooled (usage.ledger.snapshot) when an upstream is called and, for streams, at
most once every SNAPSHOT_SECONDS (`Call.progress`, from proxy/relay.py): if the process dies, the request is
still in the ledger after the next start, as `interrupted` with the usage last known.
"""

import time
from dataclasses import dataclass, field

from django.utils import timezone

from accounts.keys import AuthenticatedKey
from usage import feed, ledger, metrics, pricing, tracing
from usage.ledger_row import LedgerRow, error_fields, usage_fields

from . import policies, selection
from .canonical import MessageDelta, MessageStart, StreamError, Usage
from .errors import GatewayError, UpstreamError

SNAPSHOT_SECONDS = 1.0  # how stale the usage of a killed stream's `interrupted` row may be


def outcome_of(err: GatewayError) -> str:
    if err.kind == "rate_limit":  # our own limits and the upstream's alike
        return "rate_limited"
    if err.kind == "billing" and not isinstance(err, UpstreamError):
        return "budget_exceeded"
    if (isinstance(err, UpstreamError) and err.status >= 500) or err.kind in ("overloaded", "timeout", "api_error"):
        return "upstream_error"
    return "client_error"


@dataclass(slots=True)
class Call:
    request_id: str
    ingress: str
    user_agent: str
    key: AuthenticatedKey | None = None
    started: float = field(default_factory=time.perf_counter)
    created_at: object = field(default_factory=timezone.now)
    stream: bool = False
    alias: str = ""
    provider: str = ""
    account: str = ""
    account_id: int | None = None
    remote_model: str = ""
    upstream_api: str = ""
    price: object = None
    usage: Usage = field(default_factory=Usage)
    ttft_ms: int | None = None
    attempts: int = 0
    succeeded: bool = False
    ticket: object = None  # proxy.policies.Ticket, once admitted
    price_of: object = None  # remote model -> Price (the routing snapshot's lookup for today)
    busy_account: int | None = None  # counted in flight for least_busy selection
    recorded: bool = False
    batch_id: str = ""  # the batch this request is an item of (batches/runner.py), on its ledger row
    session_id: str = ""  # the client's session (Claude Code's x-claude-code-session-id), set by proxy.core
    # cost optimization (proxy/optimize): what chose the model, what changed the request, what it saved
    route_rule: str = ""
    reductions: str = ""
    tokens_saved: int = 0
    saved_usd: object = 0  # a cache hit's avoided cost; reductions' is priced at finish
    requested_model: str = ""  # the model name the client sent (alias may be the pattern that matched it)
    snapshot_at: float = 0.0  # perf_counter of the last spooled snapshot; 0 = none yet
    trace: object = None  # usage.tracing.Trace of a traced request (set by proxy.core.run); None = not traced
    log: object = None  # proxy.request_log.Capture, for a project that keeps request logs

    def __post_init__(self) -> None:
        metrics.request_started(self.ingress)

    def attempt_started(self, target, account, upstream_api: str, remote_model: str) -> None:
        self._leave_account()
        self.attempts += 1
        self.provider, self.account, self.account_id = target.provider.name, account.name, account.id
        self.upstream_api, self.remote_model = upstream_api, remote_model
        self.price = self.price_of(remote_model) if self.price_of else None
        selection.busy(account.id, +1)
        self.busy_account = account.id
        if self.ticket is not None:  # admitted: a ledger request (count_tokens calls have no ticket and no row)
            self._snapshot()

    def attempt_failed(self, err: GatewayError) -> None:
        metrics.upstream_errors.labels(self.provider, err.kind, str(err.status)).inc()

    def release(self) -> None:
        """End a call that is not part of the ledger (token counting)."""
        if not self.recorded:
            metrics.request_released(self.ingress)
            if self.snapshot_at:
                ledger.discard(self.request_id)
        self.recorded = True
        self._leave_account()

    def _leave_account(self) -> None:
        if self.busy_account is not None:
            selection.busy(self.busy_account, -1)
            self.busy_account = None

    def first_byte(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.perf_counter() - self.started) * 1000)
            metrics.first_byte(self)
            self.snapshot_at -= SNAPSHOT_SECONDS  # a stream's next snapshot is due now: the client has its 200

    def meter(self, events) -> None:
        """Follow usage through canonical stream events (message_start, then cumulative message_delta)."""
        for event in events:
            if isinstance(event, (MessageStart, MessageDelta)):
                self.usage = event.usage

    def progress(self, usage: Usage) -> None:
        """A stream's usage so far (relay, per chunk): spooled at most once every SNAPSHOT_SECONDS."""
        if time.perf_counter() - self.snapshot_at >= SNAPSHOT_SECONDS and not self.recorded:
            self.usage = usage
            self._snapshot()

    def _snapshot(self) -> None:
        self.snapshot_at = time.perf_counter()
        status = 200 if self.stream and self.ttft_ms is not None else 0  # 0: the client got no response
        ledger.snapshot(self.row(status, "interrupted", None, self._cost()))

    def _cost(self):
        return pricing.usage_cost(self.usage, self.price)

    def stream_failure(self, events) -> GatewayError | None:
        return next((e.error for e in events if isinstance(e, StreamError)), None)

    def finish(self, *, status: int, outcome: str, error: GatewayError | None = None) -> None:
        if self.recorded:
            return
        self.recorded = True
        self.succeeded = outcome == "ok"
        self._leave_account()
        cost = self._cost()
        if self.tokens_saved and not self.saved_usd:
            self.saved_usd = pricing.cost(input_tokens=self.tokens_saved, output_tokens=0, cache_read=0, cache_write=0,
                                          price=self.price)  # fmt: skip
        policies.settle(self.ticket, self, cost)
        row = self.row(status, outcome, error, cost)
        if self.log is not None:  # the request's log rides in the row's spool line (usage/request_logs.py)
            row.request_log = self.log.document(self, error)
        ledger.record(row)
        elapsed = time.perf_counter() - self.started
        metrics.request_finished(self, status, outcome, cost, elapsed)
        feed.publish(self, status, outcome, cost, elapsed)  # costs a clock read when nobody watches
        tracing.finished(self, status, outcome, error, cost)  # one check when tracing is off

    def row(self, status: int, outcome: str, error: GatewayError | None, cost) -> LedgerRow:
        return LedgerRow(
            created_at=self.created_at,
            request_id=self.request_id,
            project_id=self.key.project_id if self.key else None,
            api_key_id=self.key.id if self.key else None,
            alias=self.alias[:200],
            requested_model=self.requested_model[:200],
            provider=self.provider,
            account=self.account,
            remote_model=self.remote_model[:200],
            ingress_api=self.ingress,
            upstream_api=self.upstream_api,
            stream=self.stream,
            http_status=status,
            outcome=outcome,
            cost_usd=cost,
            latency_ms=int((time.perf_counter() - self.started) * 1000),
            ttft_ms=self.ttft_ms,
            attempts=self.attempts,
            user_agent=self.user_agent[:300],
            batch_id=self.batch_id,
            session_id=self.session_id[:100],
            route_rule=self.route_rule,
            reductions=self.reductions[:200],
            tokens_saved=self.tokens_saved,
            saved_usd=self.saved_usd,
            **usage_fields(self.usage),
            **error_fields(error),
        )
