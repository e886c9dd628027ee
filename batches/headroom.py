"""Batch items leave room for live traffic under the same key's limits.

Each item's answer carries the key's (or project's) rate-limit state in the caller's API headers: the limit, what
remains, when the window resets. When what remains of any limit falls to GATEWAY_BATCH_LIVE_RESERVE of it (0.2:
the last fifth), the key's batch items pause until that window resets — every worker's, through the cache
(Redis when configured) — so live requests keep the rest. Items already in flight finish; the overshoot is at most
the items in flight at that moment. A refusal by the limits themselves is handled by the runner (retry-after).
"""

import re
import time
from datetime import datetime

from django.conf import settings
from django.core.cache import cache

PREFIXES = (  # (remaining, limit, reset) header names of each API, for requests and for tokens
    ("anthropic-ratelimit-{}-remaining", "anthropic-ratelimit-{}-limit", "anthropic-ratelimit-{}-reset"),
    ("x-ratelimit-remaining-{}", "x-ratelimit-limit-{}", "x-ratelimit-reset-{}"),
)
_DURATION = re.compile(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")


def _cache_key(key_id: int) -> str:
    return f"gh:batch-pause:{key_id}"


def paused_for(key_id: int) -> float:
    """Seconds this key's batch items should still wait (0: go)."""
    until = cache.get(_cache_key(key_id))
    return max(0.0, until - time.time()) if until else 0.0


def observe(key_id: int, headers: dict[str, str]) -> None:
    """After an item: pause the key's batch items if a limit is down to its reserve for live traffic."""
    wait = _wait_for_reserve(headers, settings.GATEWAY_BATCH_LIVE_RESERVE)
    if wait > 0:
        cache.set(_cache_key(key_id), time.time() + wait, timeout=int(wait) + 1)


def _wait_for_reserve(headers: dict[str, str], reserve: float) -> float:
    wait = 0.0
    for remaining_name, limit_name, reset_name in PREFIXES:
        for what in ("requests", "tokens"):
            remaining, limit = headers.get(remaining_name.format(what)), headers.get(limit_name.format(what))
            if remaining is None or limit is None or not limit.isdigit() or int(limit) == 0:
                continue
            if int(remaining) <= reserve * int(limit):
                wait = max(wait, _seconds_until(headers.get(reset_name.format(what), "")))
    return wait


def _seconds_until(reset: str) -> float:
    """Anthropic: an RFC 3339 moment; OpenAI: a duration such as 6m0s, 1.5s or 250ms. Unknown: 1 s."""
    if "T" in reset:
        try:
            return max(0.5, datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp() - time.time())
        except ValueError:
            return 1.0
    match = _DURATION.match(reset) if reset else None
    if not match or not any(match.groups()):
        return 1.0
    minutes, secs, millis = match.groups()
    return max(0.5, int(minutes or 0) * 60 + float(secs or 0) + int(millis or 0) / 1000)
