"""The Coding Gateway's response headers, for its users' scripts and dashboards (docs/coding-gateway-api.md).

With GATEWAY_CODING_GATEWAY_HEADERS on, every answer of the model API (Messages, Chat Completions, Responses, the
cloud envelopes, the Coding Gateway's /chat; complete or streamed, fresh or from the response cache) carries:

    x-gateway              gatehouse                       the answer came through the gateway
    x-model-source         anthropic | openai | ... | cache  the API the gateway spoke to the upstream that
                                                           answered, or `cache` when the response cache did
                                                           (the Coding Gateway sent `custom`, or `local` for Ollama)
    x-cache                HIT | MISS                      the response cache (MISS also when it is off)
    x-reduction            1 | 0                           a token-reduction layer changed the request
    x-ratelimit-limit      60                              the tightest requests-per-minute limit of the key
    x-ratelimit-remaining  59                              and of its project, after this request
    x-ratelimit-reset      60                              seconds until that window has fully refilled

An error the gateway renders from a GatewayError (a 429 refusal included) carries x-gateway and the rate-limit
headers. These appear only when an RPM limit applies, like the caller API's own ones (OpenAI's
x-ratelimit-limit-requests, Anthropic's anthropic-ratelimit-requests-*), which are still sent: the names differ,
so neither hides the other. Off by default: they are facts the gateway already has (the cache lookup, the
reductions, the admitted limits, all on `call`), but a client or a proxy in front may give its own meaning to
x-cache or x-ratelimit-reset (some read an epoch time there). Off, a request pays one global read: the setting is
read once (a Django settings read costs ~1.5 µs; override_settings is followed through setting_changed).
"""

import math

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

GATEWAY = "gatehouse"
_on: bool | None = None  # GATEWAY_CODING_GATEWAY_HEADERS, once read


def add(call, headers: dict, *, answered: bool = True) -> None:
    """Add the headers to `headers` (the response's, lower-case names) from what `call` has gathered."""
    if not (_on if _on is not None else _read()):
        return
    headers["x-gateway"] = GATEWAY
    if answered:
        cache = headers.setdefault("x-cache", "MISS")
        headers["x-model-source"] = "cache" if cache == "HIT" else call.upstream_api or "none"
        headers["x-reduction"] = "1" if call.reductions else "0"
    requests = call.ticket.limits.requests if call.ticket is not None else None
    if requests is not None:
        headers["x-ratelimit-limit"] = str(requests.limit)
        headers["x-ratelimit-remaining"] = str(requests.remaining)
        headers["x-ratelimit-reset"] = str(math.ceil(requests.reset_s))


def _read() -> bool:
    global _on
    _on = bool(settings.GATEWAY_CODING_GATEWAY_HEADERS)
    return _on


@receiver(setting_changed)
def _forget(setting, **kwargs) -> None:
    global _on
    if setting == "GATEWAY_CODING_GATEWAY_HEADERS":
        _on = None
