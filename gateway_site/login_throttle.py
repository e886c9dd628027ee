"""Admin login throttling: repeated failed logins lock a username out for a while, per client address and, at a
higher count, from anywhere (an address is only as trustworthy as the proxy headers in front of it).

Counted in Django's cache (Redis when REDIS_URL is set, so shared by every process; otherwise per process).
While locked out even the right password is refused, with a message that says for how long."""

import hashlib
import logging

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

log = logging.getLogger("gatehouse.admin")

GLOBAL_FACTOR = 4  # failures for one username from all addresses together, as a multiple of the per-address limit


def _keys(username: str, address: str) -> tuple[str, str]:
    user = hashlib.sha256(username.encode()).hexdigest()[:32]
    pair = hashlib.sha256(f"{username}\0{address}".encode()).hexdigest()[:32]
    return f"gatehouse:login-fail:pair:{pair}", f"gatehouse:login-fail:user:{user}"


def _bump(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        count = 1
        cache.set(key, count, timeout)
    cache.touch(key, timeout)  # the lockout runs from the latest failure
    return count


def locked_out(username: str, address: str) -> bool:
    limit = settings.GATEWAY_LOGIN_FAILURE_LIMIT
    if limit <= 0:
        return False
    pair, user = _keys(username, address)
    counts = cache.get_many([pair, user])
    return counts.get(pair, 0) >= limit or counts.get(user, 0) >= limit * GLOBAL_FACTOR


def record_failure(username: str, address: str) -> None:
    limit = settings.GATEWAY_LOGIN_FAILURE_LIMIT
    if limit <= 0:
        return
    pair, user = (_bump(key, settings.GATEWAY_LOGIN_LOCKOUT_SECONDS) for key in _keys(username, address))
    if pair == limit or user == limit * GLOBAL_FACTOR:
        log.warning("admin login locked out for %ss after %s failed logins from %s (%s in all)",
                    settings.GATEWAY_LOGIN_LOCKOUT_SECONDS, pair, address or "unknown address", user)  # fmt: skip


def record_success(username: str, address: str) -> None:
    cache.delete(_keys(username, address)[0])


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked_out": "Too many failed logins for this account. Try again in %(minutes)s minutes.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = (self.request.META.get("REMOTE_ADDR") or "") if self.request else ""
        if username and locked_out(username, address):
            minutes = max(1, round(settings.GATEWAY_LOGIN_LOCKOUT_SECONDS / 60))
            raise ValidationError(self.error_messages["locked_out"], code="locked_out", params={"minutes": minutes})
        try:
            cleaned = super().clean()
        except ValidationError:
            if username:
                record_failure(username, address)
            raise
        record_success(username, address)
        return cleaned
