"""Checking an upstream account by hand (the admin's "Test connection", `manage.py check_providers`): one
tiny real call, signed exactly as the request path signs its calls (proxy.upstreams): the model list, or, for a
provider whose preset has no model list (models_endpoint false: Azure deployments, the clouds), a one-token request
to a model it is routed to, built by the kind's Upstream.request like a live call."""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from django.utils import timezone

from accounts.models import Provider, ProviderAccount, RouteTarget
from accounts.presets import preset_for

from . import routing, upstreams
from .errors import UpstreamError

CHECK_TIMEOUT = 10.0
MAX_PARALLEL = 16


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: int
    detail: str

    @property
    def status(self) -> str:
        return "ok" if self.ok else "FAILED"


def models_request(provider: Provider, credential: str, kind: str = "api_key") -> tuple[str, dict[str, str]]:
    """URL and headers of the upstream's model list: the cheapest authenticated call each API offers, signed
    exactly as the proxy signs its calls (proxy.upstreams; an OAuth account's token as a Bearer)."""
    upstream = upstreams.get(provider.kind)
    target = routing.provider_view(provider)
    headers = upstream.headers(target, routing.Account(0, "check", credential, 1, 0, kind=kind), {})
    headers.pop("content-type", None)
    return upstream.url(target, "models"), headers


ONE_TOKEN = {  # the smallest request each API takes
    "anthropic": lambda model: {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]},
    "openai": lambda model: {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]},
    "responses": lambda model: {"model": model, "max_output_tokens": 16, "input": "hi"},
}


def probe_request(provider: Provider, credential: str, kind: str = "api_key") -> tuple[str, str, dict, bytes | None]:
    """(method, URL, headers, body bytes) of the cheapest call that proves this account works. The one-token
    request is built by the provider's Upstream.request, as a live call is (a signature over the bytes, a model
    in the path)."""
    if preset_for(provider.preset, provider.kind).models_endpoint:
        return ("GET", *models_request(provider, credential, kind), None)
    upstream = upstreams.get(provider.kind)
    target = routing.provider_view(provider)
    model = (
        RouteTarget.objects.filter(provider=provider).exclude(remote_model="*").values_list("remote_model", flat=True)
        .first() or "gpt-4o-mini"
    )
    body = ONE_TOKEN[upstream.api](model)
    if upstream.api == "openai" and target.capabilities.max_tokens_param != "max_tokens":
        body[target.capabilities.max_tokens_param] = body.pop("max_tokens")
    account = routing.Account(0, "check", credential, 1, 0, kind=kind)
    return "POST", *upstream.request(target, account, {}, body, "chat")


def account_check(account: ProviderAccount, *, timeout: float = CHECK_TIMEOUT, transport=None) -> CheckResult:
    """Probe the upstream with this account's credential. Records the failure on the account (last_error,
    last_error_at) or clears it on success. Never raises for upstream trouble."""
    result = probe(probe_plan(account), timeout=timeout, transport=transport)
    result_record(account, result)
    return result


def accounts_check(accounts, *, timeout: float = CHECK_TIMEOUT) -> list[CheckResult]:
    """Probe the accounts at once (each within `timeout`) and record each result on its account; the results in
    the accounts' order. `check_providers`, the admin's "Test connection" action and the provider page's button."""
    accounts = list(accounts)
    if not accounts:
        return []
    plans = [probe_plan(a) for a in accounts]  # database reads stay on this thread
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(plans))) as pool:
        results = list(pool.map(lambda plan: probe(plan, timeout=timeout), plans))
    for account, result in zip(accounts, results):
        result_record(account, result)
    return results


@dataclass(frozen=True)
class ProbePlan:
    """Everything a probe needs, read from the database beforehand so probes can run in threads."""

    credential: str
    connect_timeout: float
    request: tuple | None  # (method, url, headers, body); None when the plan itself failed
    problem: str = ""


def probe_plan(account: ProviderAccount) -> ProbePlan:
    provider = account.provider
    try:
        credential = account.credential
    except ValueError as e:  # the credential cannot be decrypted
        return ProbePlan("", provider.connect_timeout, None, str(e))
    try:
        request = probe_request(provider, credential, account.kind)
    except UpstreamError as e:  # the kind could not sign the call (a malformed credential, a refused token)
        return ProbePlan(credential, provider.connect_timeout, None, e.message)
    return ProbePlan(credential, provider.connect_timeout, request)


def probe(plan: ProbePlan, *, timeout: float = CHECK_TIMEOUT, transport=None) -> CheckResult:
    """The HTTP call alone: no database, safe in a worker thread."""
    started = time.monotonic()
    if plan.request is None:
        return CheckResult(ok=False, latency_ms=0, detail=plan.problem)
    method, url, headers, body = plan.request
    try:
        client_timeout = httpx.Timeout(timeout, connect=min(plan.connect_timeout, timeout))
        with httpx.Client(timeout=client_timeout, transport=transport, follow_redirects=False) as client:
            response = client.request(method, url, headers=headers, content=body)
        ok = response.status_code == 200
        if not ok:
            detail = f"HTTP {response.status_code}: {_error_text(response)}"
        else:
            detail = _models_summary(response) if method == "GET" else "answered a one-token request"
    except httpx.TimeoutException:
        ok, detail = False, f"timed out after {timeout:g} s"
    except httpx.HTTPError as e:
        ok, detail = False, f"{type(e).__name__}: {e}"
    latency_ms = int((time.monotonic() - started) * 1000)
    if plan.credential:  # an upstream may echo what it was sent
        detail = detail.replace(plan.credential, "***")
    return CheckResult(ok=ok, latency_ms=latency_ms, detail=detail[:500])


def result_record(account: ProviderAccount, result: CheckResult) -> None:
    if result.ok:
        account.last_error, account.last_error_at = "", None
    else:
        account.last_error, account.last_error_at = result.detail, timezone.now()
    # update(), not save(): the result is bookkeeping, not a config change, so no cache flush.
    ProviderAccount.objects.filter(pk=account.pk).update(
        last_error=account.last_error, last_error_at=account.last_error_at
    )


def _models_summary(response: httpx.Response) -> str:
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        return "reachable (unexpected body)"
    return f"{len(data)} models" if isinstance(data, list) else "reachable"


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    text = str(message) if message else response.text.strip() or response.reason_phrase
    return " ".join(text.split())[:300]
