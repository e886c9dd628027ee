"""What the ledger learns about one request, gathered as the request goes, written once at its end."""

import time
from dataclasses import dataclass, field

from django.utils import timezone

from accounts.keys import AuthenticatedKey
from usage import ledger, pricing

from .canonical import MessageDelta, MessageStart, StreamError, Usage
from .errors import GatewayError, UpstreamError


def outcome_of(err: GatewayError) -> str:
    if err.kind == "rate_limit":
        return "rate_limited"
    if (isinstance(err, UpstreamError) and err.status >= 500) or err.kind in ("overloaded", "timeout", "api_error"):
        return "upstream_error"
    return "client_error"


@dataclass(slots=True)
class Call:
    request_id: str
    ingress: str
    user_agent: str
    started: float = field(default_factory=time.perf_counter)
    created_at: object = field(default_factory=timezone.now)
    stream: bool = False
    key: AuthenticatedKey | None = None
    alias: str = ""
    provider: str = ""
    account: str = ""
    remote_model: str = ""
    upstream_api: str = ""
    price: object = None
    usage: Usage = field(default_factory=Usage)
    ttft_ms: int | None = None
    recorded: bool = False

    def first_byte(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.perf_counter() - self.started) * 1000)

    def meter(self, events) -> None:
        """Follow usage through canonical stream events (message_start, then cumulative message_delta)."""
        for event in events:
            if isinstance(event, (MessageStart, MessageDelta)):
                self.usage = event.usage

    def stream_failure(self, events) -> GatewayError | None:
        return next((e.error for e in events if isinstance(e, StreamError)), None)

    def record(self, *, status: int, outcome: str, error: GatewayError | None = None) -> None:
        if self.recorded:
            return
        self.recorded = True
        usage = self.usage
        ledger.record(
            {
                "created_at": self.created_at,
                "request_id": self.request_id,
                "project_id": self.key.project_id if self.key else None,
                "api_key_id": self.key.id if self.key else None,
                "alias": self.alias[:200],
                "provider": self.provider,
                "account": self.account,
                "remote_model": self.remote_model[:200],
                "ingress_api": self.ingress,
                "upstream_api": self.upstream_api,
                "stream": self.stream,
                "http_status": status,
                "outcome": outcome,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_tokens": usage.cache_read_tokens,
                "cache_write_tokens": usage.cache_write_tokens,
                "cost_usd": pricing.cost(
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_read=usage.cache_read_tokens,
                    cache_write=usage.cache_write_tokens,
                    price=self.price,
                ),
                "latency_ms": int((time.perf_counter() - self.started) * 1000),
                "ttft_ms": self.ttft_ms,
                "error_type": error.kind if error else "",
                "error_message": error.message[:300] if error else "",
                "user_agent": self.user_agent[:300],
            }
        )
