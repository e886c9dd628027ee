"""The cost-optimization layer, between admit and attempts in proxy.core (every part is a project setting, off
by default, read from the key snapshot: with all of them off a request pays one `key.optimize is None`).

    smart_routing.py   which model alias serves the request (before routing)    X-Gateway-Route, ledger route_rule
    cache.py           the exact response cache: a hit answers here             X-Cache, ledger outcome cache_hit
    transforms/        token reduction on the caller's body, layer by layer     X-Gateway-Reduction, ledger
                                                                                reductions + tokens_saved

How to add a layer: a token-reduction layer is a module in transforms/ (its docstring has the recipe); a new
kind of step (one that may answer or must see the answer) gets a module here and a line in `prepare` / Plan.
Savings are measured by `python -m bench.replay_savings` (recorded sessions through the real gateway and the fake
upstream's prompt-cache simulation); see the README's "Cost optimization".
"""

from dataclasses import dataclass

from usage import tracing

from .. import upstreams
from . import cache, smart_routing, transforms


def choose_model(call, opt, body: dict, body_bytes: int):
    """The alias to route (the requested model unless a smart-routing rule matches); the rule goes on `call`."""
    if not opt.routes:
        return body.get("model")
    alias, rule = smart_routing.choose(opt, body, body_bytes)
    if alias is None:
        return body.get("model")
    call.route_rule = rule
    return alias


@dataclass(slots=True)
class Plan:
    hit: tuple | None = None  # (content, chunks) of a cached answer
    key: str | None = None  # the cache entry this request's answer fills
    ttl: int = 0

    def keep(self, content: bytes, call) -> None:
        if self.key:
            cache.keep(self.key, self.ttl, content, call)

    def keep_stream(self, chunks, call, ingress, body: dict):
        return cache.keep_stream(chunks, self.key, self.ttl, call, ingress, body) if self.key else chunks


def for_non_anthropic(payload: dict, fmt: str) -> dict:
    """A pass-through payload without the prompt-cache marks the breakpoints layer added for an Anthropic target,
    when the attempt goes to another kind of upstream (failover across provider kinds)."""
    return transforms.breakpoints.unmarked(payload, fmt)


async def prepare(call, opt, route, body: dict, ingress, headers: dict) -> Plan | None:
    """Cache lookup, then the request transforms. Headers for the caller are added to `headers`."""
    fmt = ingress.NAME
    if call.route_rule:
        headers["x-gateway-route"] = f"{route.alias}; rule={call.route_rule}"
    plan = None
    keep_for = cache.ttl(opt, route)
    if keep_for and fmt in transforms.FORMATS:
        headers["x-cache"] = "MISS"
        key = cache.cache_key(call.key.project_id, fmt, route.alias, body, opt.response_cache_any)
        if key is not None:
            with tracing.step(call, "cache lookup") as span:
                hit = await cache.lookup(key, call, ingress, body)
                span.set("gatehouse.cache.hit", hit is not None)
            if hit is not None:
                headers["x-cache"] = "HIT"
                return Plan(hit=hit)
            plan = Plan(key=key, ttl=keep_for)
    if opt.reduces:
        upstream = upstreams.get(route.targets[0].provider.kind).api if route.targets else ""  # the wire format
        changed, saved = transforms.reduce(body, fmt, opt, upstream)
        if changed:
            call.reductions, call.tokens_saved = ",".join(changed), saved
            headers["x-gateway-reduction"] = f"{call.reductions}; tokens_saved={saved}"
    return plan
