"""Checking an upstream account by hand (the admin's "Test connection", `manage.py check_providers`): one
tiny real call, the model list, signed exactly as the request path signs its calls (proxy.upstreams)."""

import time
from dataclasses import dataclass

import httpx
from django.utils import timezone

from accounts.models import Provider, ProviderAccount

from . import routing, upstreams

CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: int
    detail: str

    @property
    def status(self) -> str:
        return "ok" if self.ok else "FAILED"


def models_request(provider: Provider, credential: str) -> tuple[str, dict[str, str]]:
    """URL and headers of the upstream's model list: the cheapest authenticated call each API offers, signed
    exactly as the proxy signs its calls (proxy.upstreams)."""
    upstream = upstreams.get(provider.kind)
    target = routing.provider_view(provider)
    headers = upstream.headers(target, routing.Account(0, "check", credential, 1, 0), {})
    headers.pop("content-type", None)
    return upstream.url(target, "models"), headers


def account_check(account: ProviderAccount, *, timeout: float = CHECK_TIMEOUT, transport=None) -> CheckResult:
    """GET the upstream model list with this account's credential. Records the failure on the account
    (last_error, last_error_at) or clears it on success. Never raises for upstream trouble."""
    provider = account.provider
    started = time.monotonic()
    credential = ""
    try:
        credential = account.credential
        url, headers = models_request(provider, credential)
        client_timeout = httpx.Timeout(timeout, connect=min(provider.connect_timeout, timeout))
        with httpx.Client(timeout=client_timeout, transport=transport, follow_redirects=False) as client:
            response = client.get(url, headers=headers)
        ok = response.status_code == 200
        detail = _models_summary(response) if ok else f"HTTP {response.status_code}: {_error_text(response)}"
    except ValueError as e:  # the credential cannot be decrypted
        ok, detail = False, str(e)
    except httpx.TimeoutException:
        ok, detail = False, f"timed out after {timeout:g} s"
    except httpx.HTTPError as e:
        ok, detail = False, f"{type(e).__name__}: {e}"
    latency_ms = int((time.monotonic() - started) * 1000)
    if credential:  # an upstream may echo what it was sent
        detail = detail.replace(credential, "***")
    detail = detail[:500]
    if ok:
        account.last_error, account.last_error_at = "", None
    else:
        account.last_error, account.last_error_at = detail, timezone.now()
    # update(), not save(): the result is bookkeeping, not a config change, so no cache flush.
    ProviderAccount.objects.filter(pk=account.pk).update(
        last_error=account.last_error, last_error_at=account.last_error_at
    )
    return CheckResult(ok=ok, latency_ms=latency_ms, detail=detail)


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
