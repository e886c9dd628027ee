"""Rate limits: requests and tokens per minute (sliding 60-second windows) per key and per project, and an
optional cap on a key's concurrent requests. Blank in the admin or the config file = unlimited.

State keys: rpm:k:<key id>, tpm:k:<key id>, rpm:p:<project id>, tpm:p:<project id>, conc:k:<key id>.
TPM takes the request's estimate at admission (input + max output tokens) and is corrected to the real count
(input + output + cache read + cache write tokens) when the request settles.
"""

import math

from ..canonical import Limits, LimitState
from ..errors import RateLimited
from .state import Admission, Concurrency, Window

WINDOW_S = 60
NAMES = {"rpm": "requests per minute", "tpm": "tokens per minute", "conc": "concurrent requests"}
SCOPES = {"k": "this API key", "p": "this project"}


def any_for(key) -> bool:
    return bool(key.key_rpm or key.key_tpm or key.key_concurrent or key.project_rpm or key.project_tpm)


def specs(key, token_estimate: int) -> tuple[list[Window], list[Concurrency]]:
    windows = []
    if key.key_rpm:
        windows.append(Window(f"rpm:k:{key.id}", key.key_rpm, 1, WINDOW_S))
    if key.project_rpm:
        windows.append(Window(f"rpm:p:{key.project_id}", key.project_rpm, 1, WINDOW_S))
    if key.key_tpm:
        windows.append(Window(f"tpm:k:{key.id}", key.key_tpm, token_estimate, WINDOW_S))
    if key.project_tpm:
        windows.append(Window(f"tpm:p:{key.project_id}", key.project_tpm, token_estimate, WINDOW_S))
    concurrency = [Concurrency(f"conc:k:{key.id}", key.key_concurrent)] if key.key_concurrent else []
    return windows, concurrency


def view(admission: Admission, windows: list[Window]) -> Limits:
    """The tightest request window and the tightest token window, for the caller's limit headers."""
    tightest: dict[str, LimitState] = {}
    for window in windows:
        state = admission.windows.get(window.key)
        if state is None:
            continue
        kind = "requests" if window.key.startswith("rpm:") else "tokens"
        current = tightest.get(kind)
        if current is None or state.remaining < current.remaining:
            tightest[kind] = LimitState(state.limit, state.remaining, state.reset_s)
    return Limits(requests=tightest.get("requests"), tokens=tightest.get("tokens"))


def refusal(refused_by: str, admission: Admission) -> RateLimited:
    kind, scope, _ = (refused_by.split(":") + ["", ""])[:3]
    retry_after = max(1, math.ceil(admission.retry_after))
    limit = admission.windows[refused_by].limit if refused_by in admission.windows else None
    what = f"{limit} {NAMES.get(kind, kind)}" if limit is not None else NAMES.get(kind, kind)
    err = RateLimited(
        f"Rate limit reached: {what} for {SCOPES.get(scope, scope)}. Retry in {retry_after} s.",
        code="rate_limit_exceeded",
        retry_after=str(retry_after),
    )
    err.headers["retry-after-ms"] = str(max(1, int(admission.retry_after * 1000)))
    return err
