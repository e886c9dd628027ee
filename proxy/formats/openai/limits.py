"""OpenAI's rate-limit response headers (x-ratelimit-*): limit, remaining, and the time until reset as a
duration ("1s", "6m0s", "250ms"), for requests and for tokens."""

from ...canonical import Limits


def render_limit_headers(limits: Limits, now: float) -> dict[str, str]:
    headers = {}
    for name, state in (("requests", limits.requests), ("tokens", limits.tokens)):
        if state is None:
            continue
        headers[f"x-ratelimit-limit-{name}"] = str(state.limit)
        headers[f"x-ratelimit-remaining-{name}"] = str(state.remaining)
        headers[f"x-ratelimit-reset-{name}"] = duration(state.reset_s)
    return headers


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = int(round(seconds))
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
