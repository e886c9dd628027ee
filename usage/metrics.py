"""Every Prometheus metric the gateway defines, in one place; each is moved where its event happens.

    series                                   labels                              moved by
    gateway_requests_total                   api, model, project, status,        proxy.metering: Call.finish
                                             outcome
    gateway_request_latency_seconds          api, model, stream                  Call.finish
    gateway_time_to_first_token_seconds      api, model                          Call.first_byte (streams)
    gateway_stream_duration_seconds          api, model                          Call.finish (first byte -> end)
    gateway_tokens_total                     project, model, type                Call.finish
    gateway_cost_usd_total                   project, model                      Call.finish
    gateway_cache_hits_total                 project, model                      Call.finish (outcome cache_hit)
    gateway_unpriced_requests_total          model                               Call.finish: tokens used, no price
                                                                                 in force, recorded at $0
    gateway_active_requests                  api                                 Call created -> finished
    gateway_upstream_errors_total            provider, kind, status              Call.attempt_failed: every
                                                                                 failed attempt, retried or not
    gateway_rate_limit_hits_total            project, kind (rpm|tpm|conc)        proxy.policies.admit
    gateway_circuit_state                    provider, account                   proxy.breaker, on a change
    gateway_breaker_panic_total              provider, account                   proxy.breaker.panicked: a call
                                                                                 sent with every account open
    gateway_ledger_write_failures_total      -                                   usage.ledger
    gateway_ledger_backlog_rows              -                                   usage.ledger
    gateway_live_feed_dropped_total          reason                              usage.feed
    gateway_auth_failures_total              reason (missing|invalid|expired|    proxy.auth_failures
                                             throttled)
    gateway_dependency_up                    dependency (database|redis|ledger)  /ready, at each probe
    gateway_bill_drift_rows                  provider, account                   usage.reconcile, at each run:
                                                                                 lines over tolerance
    gateway_bill_fetch_failures_total        provider, account                   usage.reconcile: a provider's
                                                                                 report could not be read
    gateway_redactions_total                 project, rule, action (mask|block|  proxy.redact.outbound: each
                                             log)                                finding in a request

Labels stay bounded: `model` is the *route* alias the request matched (a pattern such as `claude-*` stays the
pattern; the client's own model name, which a `*` route passes through, is never a label), `project` the
project's slug, `provider`/`account` the configured names; never a key, request or row id.

Several processes on one host (or behind one scrape address): set PROMETHEUS_MULTIPROC_DIR to a directory
they share, emptied when the host starts (a tmpfs). prometheus_client then keeps every value in a small mmap
file per process and /metrics, from any process, reports their sum (gauges: see each one's multiprocess_mode).
Without it each process keeps its own registry and is its own scrape target. See README, "Metrics".

How to add one: define it here with bounded labels, move it where the event happens, add it to the table
above, to README "Metrics" and, if operators should watch it, to deploy/grafana/gatehouse.json.
"""

import atexit
import glob
import logging
import os

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
log = logging.getLogger(__name__)
TOKEN_TYPES = (("input", "input_tokens"), ("output", "output_tokens"), ("cache_read", "cache_read_tokens"),
               ("cache_write", "cache_write_tokens"))  # fmt: skip

requests = Counter(
    "gateway_requests_total", "Requests finished, by the status the client got", ["api", "model", "project", "status", "outcome"]
)
latency = Histogram(
    "gateway_request_latency_seconds", "Whole request, arrival to last byte", ["api", "model", "stream"], buckets=LATENCY_BUCKETS
)
ttft = Histogram(
    "gateway_time_to_first_token_seconds", "Arrival to the first upstream byte of a stream", ["api", "model"], buckets=LATENCY_BUCKETS
)
stream_duration = Histogram(
    "gateway_stream_duration_seconds", "A stream's first byte to its end", ["api", "model"], buckets=LATENCY_BUCKETS
)
tokens = Counter("gateway_tokens_total", "Tokens by type", ["project", "model", "type"])
cost = Counter("gateway_cost_usd_total", "Cost in USD at the price in force", ["project", "model"])
cache_hits = Counter("gateway_cache_hits_total", "Requests answered from the response cache", ["project", "model"])
active = Gauge("gateway_active_requests", "Requests in flight", ["api"], multiprocess_mode="livesum")
rate_limit_hits = Counter(
    "gateway_rate_limit_hits_total", "Requests refused by a rate limit", ["project", "kind"]  # kind: rpm|tpm|conc
)
upstream_errors = Counter(
    "gateway_upstream_errors_total", "Failed upstream attempts (each retry counts)", ["provider", "kind", "status"]
)
circuit_state = Gauge(
    "gateway_circuit_state", "Circuit breaker per account: 0 closed, 1 half-open, 2 open", ["provider", "account"],
    multiprocess_mode="livemax",
)
CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}
breaker_panic = Counter(
    "gateway_breaker_panic_total", "Upstream calls sent while every account of the route was open (panic routing)",
    ["provider", "account"],
)
ledger_dropped = Counter("gateway_ledger_write_failures_total", "Usage records that could not be written")
ledger_backlog = Gauge(  # usage.ledger: rows in the spool, not yet in the database (retried until they are)
    "gateway_ledger_backlog_rows", "Usage records waiting for the database", multiprocess_mode="livesum"
)
feed_dropped = Counter(
    "gateway_live_feed_dropped_total", "Live-feed events not delivered (layer slow or down, too many pending)", ["reason"]
)
dependency_up = Gauge(  # set by /ready (gateway_site/health.py) each time a probe asks
    "gateway_dependency_up", "1 when the dependency was usable at the last /ready, 0 when down or degraded",
    ["dependency"], multiprocess_mode="livemin",
)  # dependency: database | redis (only when REDIS_URL is set) | ledger
unpriced = Counter(  # the unpriced marker's alert signal (docs/finance.md): alert on any increase
    "gateway_unpriced_requests_total", "Requests with tokens and no price in force, recorded at $0", ["model"]
)
auth_failures = Counter(  # proxy.auth_failures; no ledger row is written for these requests
    "gateway_auth_failures_total", "API requests refused before the body was read, by reason", ["reason"]
)  # reason: missing | invalid | expired | throttled

bill_drift_rows = Gauge(  # usage.reconcile: the account's last reconciliation (docs/reconciliation.md)
    "gateway_bill_drift_rows", "Day x model lines where the provider's bill and the ledger differ beyond tolerance",
    ["provider", "account"], multiprocess_mode="mostrecent",
)
bill_fetch_failures = Counter(
    "gateway_bill_fetch_failures_total", "Provider usage/cost reports that could not be read", ["provider", "account"]
)
redactions = Counter(  # proxy.redact; rule: an id of accounts.models.REDACTION_RULES
    "gateway_redactions_total", "Secrets and personal data found in requests, by rule and action",
    ["project", "rule", "action"],
)  # action: mask | block | log


# Label children, looked up once per label set: `.labels(...)` costs ~1.5 µs a call (argument checks, a lock, a
# dict lookup on a tuple it builds), and a request moves up to seven series. prometheus_client itself keeps every
# child it ever created (until .remove()/.clear(), which nothing here calls), so holding them here keeps nothing
# alive that would not be kept anyway; the label sets are bounded as the module docstring says.
_children: dict = {}


def _child(metric, *labels):
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def request_started(api: str) -> None:
    _child(active, api).inc()


def first_byte(call) -> None:
    if call.stream:
        _child(ttft, call.ingress, call.alias).observe(call.ttft_ms / 1000)


def request_finished(call, status: int, outcome: str, cost_usd, elapsed_s: float) -> None:
    """`call` is a proxy.metering.Call, read for its ingress, alias, key, stream, usage and ttft_ms."""
    api, model = call.ingress, call.alias
    project = call.key.project_slug if call.key is not None else ""
    _child(active, api).dec()
    _child(requests, api, model, project, str(status), outcome).inc()
    stream = call.stream
    _child(latency, api, model, "true" if stream else "false").observe(elapsed_s)
    if stream and call.ttft_ms is not None:
        _child(stream_duration, api, model).observe(max(0.0, elapsed_s - call.ttft_ms / 1000))
    usage = call.usage
    for kind, attr in TOKEN_TYPES:
        count = getattr(usage, attr)
        if count:
            _child(tokens, project, model, kind).inc(count)
    if cost_usd:
        _child(cost, project, model).inc(float(cost_usd))
    elif call.price is None and any(getattr(usage, attr) for _, attr in TOKEN_TYPES):
        _unpriced(model, call.remote_model)
    if outcome == "cache_hit":
        _child(cache_hits, project, model).inc()


_warned_unpriced: set[str] = set()


def _unpriced(alias: str, remote_model: str) -> None:
    """A request that used tokens of a model with no price: counted, and logged once per model and process (the
    pages' unpriced marker, usage.selectors.unpriced_models, says which models and how much traffic)."""
    _child(unpriced, alias).inc()
    if remote_model not in _warned_unpriced:
        _warned_unpriced.add(remote_model)
        log.warning("unpriced model %r (route %r): its requests are recorded at $0; add a price", remote_model, alias)


def bill_drift(provider: str, account: str, lines: int) -> None:
    _child(bill_drift_rows, provider, account).set(lines)


def bill_fetch_failed(provider: str, account: str) -> None:
    _child(bill_fetch_failures, provider, account).inc()


def redacted(project: str, rule: str, action: str, count: int) -> None:
    _child(redactions, project, rule, action).inc(count)


def request_released(api: str) -> None:
    """A call that is not a ledger request (token counting) leaves the in-flight gauge."""
    _child(active, api).dec()


def multiprocess_setup() -> None:
    """With PROMETHEUS_MULTIPROC_DIR (which must exist before the process starts: prometheus_client writes its
    files as metrics are defined): forget the live gauges of processes that died without saying so (SIGKILL),
    and say so for this one at exit. Counters of dead processes stay: a sum over processes must never go down."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    from prometheus_client import multiprocess

    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = int(path.rsplit("_", 1)[1].removesuffix(".db"))
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, directory)
    atexit.register(multiprocess.mark_process_dead, os.getpid(), directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
