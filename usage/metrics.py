"""Every Prometheus metric the gateway defines, in one place. Request totals are updated when a request is
recorded; the policy series where their event happens (a refusal, a failed attempt, a breaker change)."""

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

requests = Counter(
    "gatehouse_requests_total", "API requests by outcome", ["ingress", "alias", "provider", "outcome", "status"]
)
tokens = Counter("gatehouse_tokens_total", "Tokens by kind", ["alias", "provider", "kind"])
cost = Counter("gatehouse_cost_usd_total", "Cost in USD", ["alias", "provider"])
latency = Histogram("gatehouse_request_seconds", "Whole request latency", ["ingress", "stream"], buckets=LATENCY_BUCKETS)
ttft = Histogram("gatehouse_time_to_first_token_seconds", "Time to first upstream byte of a stream", ["ingress"], buckets=LATENCY_BUCKETS)
rate_limit_hits = Counter(
    "gateway_rate_limit_hits_total", "Requests refused by a rate limit", ["project", "kind"]  # kind: rpm|tpm|conc
)
upstream_errors = Counter(
    "gateway_upstream_errors_total", "Failed upstream attempts (each retry counts)", ["provider", "kind", "status"]
)
circuit_state = Gauge(
    "gateway_circuit_state", "Circuit breaker per account: 0 closed, 1 half-open, 2 open", ["provider", "account"],
    multiprocess_mode="max",
)
CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}
ledger_dropped = Counter("gatehouse_ledger_write_failures_total", "Usage records that could not be written")


def observe(record: dict) -> None:
    alias, provider = record.get("alias", ""), record.get("provider", "")
    requests.labels(record["ingress_api"], alias, provider, record["outcome"], str(record["http_status"])).inc()
    for kind, field in (("input", "input_tokens"), ("output", "output_tokens"), ("cache_read", "cache_read_tokens"), ("cache_write", "cache_write_tokens")):
        if record.get(field):
            tokens.labels(alias, provider, kind).inc(record[field])
    if record.get("cost_usd"):
        cost.labels(alias, provider).inc(float(record["cost_usd"]))
    latency.labels(record["ingress_api"], str(record.get("stream", False)).lower()).observe(record["latency_ms"] / 1000)
    if record.get("ttft_ms") is not None:
        ttft.labels(record["ingress_api"]).observe(record["ttft_ms"] / 1000)
