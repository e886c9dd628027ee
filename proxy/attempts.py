"""The only retry and failover loop: pick an account, send, classify the outcome, back off, fail over.

Every upstream outcome is classified once, by `classify`:

    outcome                               try again?           the account's health (proxy/breaker.py)
    2xx                                   -                    a success (closes a recovering breaker)
    429                                   yes, after its       cooled down for retry-after / retry-after-ms
                                          retry-after          (GATEWAY_BREAKER_RATE_LIMIT_SECONDS if absent)
    408, 409, 5xx, 529                    yes                  a failure (N within the window open the breaker)
    timeout, connection refused or reset  yes                  a failure (a complete answer is read inside the
                                                               loop, so a body cut mid-way is retried too)
    401, 403                              yes, on another      the credential is bad: cooled down for
                                          account only         GATEWAY_CREDENTIAL_COOLDOWN_SECONDS, marked in
                                                               the admin; never shown to the client as its own
    508 (a gateway loop, proxy/hop.py)    yes, on another      a failure (the provider's URL leads back here)
                                          account only
    400, 404, 413, 422, other 4xx         no: the client gets  none (the request was wrong, not the account)
                                          the upstream's error
    `x-should-retry: true|false` from the upstream overrides "try again?" (as the official SDKs do), except for
    401/403/508, which name the account's configuration, not the request.

The loop makes at most `max_attempts` upstream calls, all before the first byte reaches the client (a stream
is never retried once it has started). Each call goes to the next candidate from proxy/selection.py (healthy
accounts first; when every account is open, all of them anyway: panic routing); when every candidate has been
tried it starts over with the ones still worth trying. A call to an account already tried in this request waits
first: full-jitter exponential backoff (base x 2^n, at most cap), or the upstream's retry-after when that is
longer; a wait that would end past the deadline ends the loop.

Retries do not multiply: a client that retries by itself says so (the official SDKs, and Claude Code built on
one, number their attempts in `x-stainless-retry-count`). On such a retry the gateway calls each account at
most once (failover, no backoff of its own), so the client's own backoff paces the retries and one client
request never costs more than `max_attempts` upstream calls.

When nothing succeeds the client gets the last upstream error in its own format (a 429 stays a 429 with its
retry-after, a 529 stays overloaded, a 400 keeps the upstream's message), or one the gateway made for what it
saw itself: its credential refused (502), no connection (502), a timeout (504), or, on a fail-fast route with
every account open, 529/503 overloaded.
"""

import asyncio
import random
import time
from dataclasses import dataclass, replace

import httpx
from django.conf import settings

from accounts import oauth
from usage import tracing

from . import breaker, formats, optimize, selection, upstreams
from .canonical import TargetOptions
from .errors import GatewayError, Unavailable, UpstreamError
from .formats.anthropic.upstream_request import with_identity

CLIENT_RETRY_HEADER = "x-stainless-retry-count"  # 0 on a client's first attempt, n on its n-th retry


@dataclass(frozen=True, slots=True)
class Verdict:
    retry: bool  # may another attempt follow?
    health: str  # "failure" | "cooldown" | "credential" | "none"
    same_account: bool = True  # may this account be tried again in this request?


TRANSPORT = Verdict(True, "failure")
BY_STATUS = {
    429: Verdict(True, "cooldown"),
    408: Verdict(True, "failure"),
    409: Verdict(True, "failure"),
    401: Verdict(True, "credential", same_account=False),
    403: Verdict(True, "credential", same_account=False),
    508: Verdict(True, "failure", same_account=False),  # the refusing gateway says x-should-retry: false to its caller
}
CLIENT_ERROR = Verdict(False, "none")
SERVER_ERROR = Verdict(True, "failure")
CREDENTIAL = BY_STATUS[401]
OAUTH = "anthropic_oauth"


def classify(status: int, headers) -> Verdict:
    verdict = BY_STATUS.get(status) or (SERVER_ERROR if status >= 500 else CLIENT_ERROR)
    should_retry = headers.get("x-should-retry")
    if should_retry in ("true", "false") and verdict.health != "credential" and status != 508:
        verdict = Verdict(should_retry == "true", verdict.health, verdict.same_account)
    return verdict


def retry_after_seconds(headers) -> float | None:
    """retry-after-ms, else retry-after (seconds; an HTTP date is ignored)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    cap_s: float
    deadline_s: float

    @classmethod
    def for_route(cls, route) -> "RetryPolicy":
        attempts, base_ms, cap_ms, deadline = route.retry
        return cls(
            max_attempts=attempts or settings.GATEWAY_RETRY_MAX_ATTEMPTS,
            base_s=(base_ms if base_ms is not None else settings.GATEWAY_RETRY_BASE_MS) / 1000,
            cap_s=(cap_ms if cap_ms is not None else settings.GATEWAY_RETRY_CAP_MS) / 1000,
            deadline_s=deadline or settings.GATEWAY_RETRY_DEADLINE_SECONDS,
        )

    def calls(self, candidates, client_headers) -> int:
        """How many upstream calls this request may make: max_attempts, or on a client's own retry one per
        account (the client paces its retries; the gateway only fails over)."""
        if client_headers.get(CLIENT_RETRY_HEADER, "0") not in ("0", ""):
            return min(self.max_attempts, len({c.account.id for c in candidates}))
        return self.max_attempts

    def backoff(self, retry_number: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (retry_number - 1)))


@dataclass(slots=True)
class Answer:
    """An upstream that said yes: status 2xx, headers in, body still to read."""

    response: httpx.Response
    chat: object  # the canonical request when translated; None when caller and upstream speak the same API
    upstream_format: object
    raw: bytes | None = None  # the whole body, for a request that does not stream (read before answering)


async def first_answer(call, route, body: dict, ingress, client_headers, health: dict, operation: str = "chat") -> Answer:
    policy = RetryPolicy.for_route(route)
    candidates = selection.order(route, health)
    if not candidates:
        raise _all_cooling_down(health, route)
    deadline = time.monotonic() + policy.deadline_s
    tried: set[int] = set()
    burned: set[int] = set()  # accounts not to try again in this request
    last: GatewayError | None = None
    last_wait: float | None = None
    parsed = None
    for _ in range(policy.calls(candidates, client_headers)):
        pick = _next(candidates, tried, burned)
        if pick is None:
            break
        wait = 0.0
        if pick.account.id in tried:
            wait = policy.backoff(call.attempts)
            if last_wait is not None:
                if last_wait > policy.cap_s:
                    break  # the upstream asks for a longer pause than we wait: the client decides (retry-after)
                wait = max(wait, last_wait)
            if time.monotonic() + wait > deadline:
                break
            await asyncio.sleep(wait)
        if pick.probe and not await breaker.claim_probe(pick.account.id):
            burned.add(pick.account.id)
            continue
        if pick.panic:
            breaker.panicked(pick)
        tried.add(pick.account.id)
        with tracing.attempt(call, pick, wait) as span:  # its traceparent goes upstream (proxy/upstreams/base.py)
            parsed, result = await _attempt(call, route, pick, body, ingress, client_headers, parsed, operation)
            span.answered(result)
        if isinstance(result, Answer):
            if pick.panic:
                breaker.panic_answered(pick.account.id)
            return result
        err, verdict = result
        last, last_wait = err, retry_after_seconds(err.raw.headers) if getattr(err, "raw", None) else None
        await breaker.failed(pick.account, pick.target.provider.name, verdict.health, err, last_wait)
        if not verdict.retry:
            raise err
        if not verdict.same_account:
            burned.add(pick.account.id)
    raise _final(last, route)


def _next(candidates, tried: set, burned: set):
    """The first candidate not tried yet; else the first one still worth trying again."""
    for pick in candidates:
        if pick.account.id not in tried and pick.account.id not in burned:
            return pick
    for pick in candidates:
        if pick.account.id not in burned and not pick.probe:
            return pick
    return None


async def _attempt(call, route, pick, body, ingress, client_headers, parsed, operation):
    """One upstream call. Returns (parsed request, Answer) or (parsed request, (error, verdict))."""
    target, account = pick.target, pick.account
    upstream = upstreams.get(target.provider.kind)
    upstream_format = formats.get(upstream.api)
    options = target_options(route, target, body.get("model"))
    chat, payload = upstream.payload(ingress, body, options, parsed)
    if chat is None:  # same API: pass-through, both ways
        if upstream.api != "anthropic" and "breakpoints" in call.reductions:  # marked for another target
            payload = optimize.for_non_anthropic(payload, ingress.NAME)
    else:
        parsed = chat
    call.attempt_started(target, account, upstream.api, options.remote_model)
    try:
        if account.kind == OAUTH:
            response = await _send_oauth(upstream, target.provider, account, client_headers, payload, operation)
        else:
            response = await upstream.send(target.provider, account, client_headers, payload, operation)
    except UpstreamError as err:
        call.attempt_failed(err)
        return parsed, (err, CREDENTIAL if err.kind == "authentication" else TRANSPORT)
    if response.status_code < 400:
        if call.stream:
            return parsed, Answer(response, chat, upstream_format)
        try:  # a complete answer is read here: a connection that breaks mid-body is still worth a retry
            return parsed, Answer(response, chat, upstream_format, raw=await _read_all(response))
        except UpstreamError as err:
            call.attempt_failed(err)
            return parsed, (err, TRANSPORT)
    error_body = await response.aread()
    await response.aclose()
    headers = {k.lower(): v for k, v in response.headers.items()}
    err = upstream_format.parse_error(response.status_code, error_body, headers)
    call.attempt_failed(err)
    return parsed, (err, classify(response.status_code, headers))


async def _read_all(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    except httpx.HTTPError:
        raise UpstreamError("upstream closed the connection mid-response", kind="api_error", status=502) from None
    finally:
        await response.aclose()


async def _send_oauth(upstream, provider, account, client_headers, payload: dict, operation: str) -> httpx.Response:
    """An OAuth account's call: a token refreshed first when it is about to expire, the identity system block
    the upstream requires, and on a 401 one refresh and one resend (accounts/oauth.py). A failed refresh is
    an authentication error: the breaker cools the account down and the loop fails over."""
    if upstream.api == "anthropic" and operation == "chat":
        payload = with_identity(payload)
    account = await _oauth_token(account)
    response = await upstream.send(provider, account, client_headers, payload, operation)
    if response.status_code != 401:
        return response
    await response.aclose()
    account = await _oauth_token(account, refused=True)
    return await upstream.send(provider, account, client_headers, payload, operation)


async def _oauth_token(account, refused: bool = False):
    try:
        if refused:
            token = await oauth.refresh(account.id, stale=account.credential)
        else:
            token = await oauth.usable_token(account.id, account.credential, account.expires_at)
    except oauth.OAuthError as e:
        raise UpstreamError(f"OAuth account {account.name}: {e}", kind="authentication", status=401) from None
    return replace(account, credential=token)


def target_options(route, target, requested_model) -> TargetOptions:
    return TargetOptions(
        remote_model=requested_model if target.remote_model == "*" else target.remote_model,
        default_max_tokens=route.default_max_tokens or settings.GATEWAY_DEFAULT_MAX_TOKENS,
        max_output_tokens=route.max_output_tokens,
        capabilities=target.provider.capabilities,
    )


def _final(last: GatewayError | None, route) -> GatewayError:
    if last is None:
        return Unavailable(f"no upstream account could serve {route.alias} right now", retry_after="1")
    if last.kind in ("authentication", "permission"):
        # The upstream refused the gateway's credential, not the client's key: never answer 401/403 for it.
        return UpstreamError(
            f"no upstream account could serve {route.alias}: the provider refused the gateway's credential "
            f"(HTTP {last.status}); an operator must fix the account",
            kind="api_error",
            status=502,
        )
    return last


def _all_cooling_down(health: dict, route) -> Unavailable:
    """A fail-fast route (proxy/selection.py) with every account open: the gateway's own decision, said so."""
    now = time.time()
    soonest = min((s.open_until for s in health.values() if s.open_until > now), default=now + 1)
    wait = max(1, int(soonest - now + 0.999))
    return Unavailable(
        f"every upstream account for {route.alias} is cooling down after errors; retry in {wait} s",
        retry_after=str(wait),
    )
