"""Anthropic's rate-limit response headers (anthropic-ratelimit-*): limit, remaining, and the reset moment as an
RFC 3339 timestamp, for requests and for tokens."""

from datetime import datetime, timezone

from ...canonical import Limits


def render_limit_headers(limits: Limits, now: float) -> dict[str, str]:
    headers = {}
    for name, state in (("requests", limits.requests), ("tokens", limits.tokens)):
        if state is None:
            continue
        reset = datetime.fromtimestamp(now + state.reset_s, tz=timezone.utc).isoformat(timespec="seconds")
        headers[f"anthropic-ratelimit-{name}-limit"] = str(state.limit)
        headers[f"anthropic-ratelimit-{name}-remaining"] = str(state.remaining)
        headers[f"anthropic-ratelimit-{name}-reset"] = reset.replace("+00:00", "Z")
    return headers
