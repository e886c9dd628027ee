"""Loop detection: a gateway that is (directly or through other Gatehouse deployments) its own upstream.

Every upstream call carries `x-gatehouse-hop: <id>, <id>, ...`, the deployments the request has passed through,
this one last (set by Upstream.headers in proxy/upstreams/base.py, which every upstream call builds: live and
batch-item traffic, token counting, native batches, the admin's provider check). A model request, a token count or a batch
creation whose header already names this deployment is refused with `508 Loop Detected` in the caller's
format, before any upstream call (proxy/core.run records it: one ledger row, outcome client_error, error type
loop_detected).

Only our own id is refused: a chain of different deployments (team gateway -> company gateway) is legitimate,
and since each one appends its id, A -> B -> A is caught at A's second hop. A chain longer than MAX_HOPS is
refused as well, so neither a forged header nor a ring of gateways can grow it without bound.

The id is stable across the processes of one deployment and says nothing about its secrets:
GATEWAY_DEPLOYMENT_ID when set, else 16 hex digits of an HMAC keyed by SECRET_KEY (Django's salted_hmac).
Two deployments sharing one SECRET_KEY share an id: chaining them is refused; give one an id of its own.
"""

from django.conf import settings
from django.utils.crypto import salted_hmac

from .errors import LoopDetected

HEADER = "x-gatehouse-hop"
MAX_HOPS = 8
_id: str | None = None


def deployment_id() -> str:
    global _id
    if _id is None:
        _id = settings.GATEWAY_DEPLOYMENT_ID.strip() or salted_hmac("gatehouse.hop", "deployment").hexdigest()[:16]
    return _id


def check(client_headers) -> None:
    """LoopDetected when the request already passed through this deployment (one header lookup otherwise)."""
    chain = client_headers.get(HEADER)
    if not chain:
        return
    ids = [part.strip() for part in chain.split(",")]
    if deployment_id() in ids:
        raise LoopDetected(
            "loop detected: this request already passed through this gateway (a provider's base URL points back "
            "at the gateway itself; change it to the real upstream)"
        )
    if len(ids) >= MAX_HOPS:
        raise LoopDetected(f"loop detected: the request passed through {len(ids)} gateways (at most {MAX_HOPS - 1})")


def value(client_headers) -> str:
    """The header an upstream call carries: the incoming chain, if any, with this deployment appended."""
    chain = client_headers.get(HEADER) if client_headers else None
    return f"{chain}, {deployment_id()}" if chain else deployment_id()
