"""Which (target, account) pairs serve a request, in the order they are tried. Health always comes first:

    1. healthy accounts (breaker closed), ordered by the route's strategy;
    2. half-open accounts (cool-off over): tried only by the one request that claims the probe;
    skipped: open accounts (failing, rate-limited by the upstream, or with a refused credential),
             as long as one account of the route is healthy.

Panic routing (the default): when no account of the route is healthy (a route with one account, or every
account failing), the request is sent anyway, to every account in turn: half-open ones first, then open ones by
the end of their cooldown, none waiting for a probe. The client gets the provider's own answer, never an error
the gateway made up from a guess about the upstream. Such a call counts as the account's probe: answered (2xx),
it closes the breaker (proxy/breaker.py panic_answered). A route (ModelRoute.on_all_open) or
GATEWAY_BREAKER_ON_ALL_OPEN may choose "fail_fast" instead: nothing is sent and the client gets 529/503
overloaded with retry-after (proxy/attempts.py).
Why panic is the default: on the most common setup, one account per route, a breaker that refuses can only turn
a provider's passing 429s and 529s into an outage the gateway made. Envoy's outlier detection does the same (its
"panic threshold": too few healthy hosts, route to all of them) and LiteLLM never cools down a model group with
a single deployment.

Strategies (ModelRoute.strategy):
    priority     targets by priority, then their accounts by priority; equal priorities shuffled by weight
                 (today's failover order)
    weighted     every pair drawn at random by target weight x account weight
    least_busy   fewest requests in flight on this process first (ties: priority order)
    round_robin  the priority order rotated by one for each request on this process
least_busy and round_robin count per process: with N processes behind a balancer each spreads its own share.

To add a strategy: a function (pairs, route) -> ordered pairs, and one line in STRATEGIES and in
ModelRoute.STRATEGY_CHOICES.
"""

import itertools
import random
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings

from .routing import Account, Route, Target


@dataclass(frozen=True, slots=True)
class Candidate:
    target: Target
    account: Account
    probe: bool = False  # half-open: must claim the probe before trying
    panic: bool = False  # every account of the route is open: sent all the same (no probe to claim)


_inflight: dict[int, int] = defaultdict(int)
_turns: dict[str, itertools.count] = {}


def busy(account_id: int, delta: int) -> None:
    _inflight[account_id] += delta


def inflight(account_id: int) -> int:
    """Requests this process has in flight on the account (the management API's status reads it)."""
    return _inflight.get(account_id, 0)


def order(route: Route, health: dict) -> list[Candidate]:
    pairs = STRATEGIES.get(route.strategy, _priority)(route)
    healthy, probes, unhealthy = [], [], []
    for target, account in pairs:
        state = health.get(account.id)
        if state is None or state.state == "closed":
            healthy.append(Candidate(target, account))
        else:
            if state.state == "half_open":
                probes.append(Candidate(target, account, probe=True))
            unhealthy.append((state.state != "half_open", state.open_until, target, account))
    if healthy or fails_fast(route):
        return healthy + probes
    unhealthy.sort(key=lambda item: item[:2])  # half-open first, then by the end of the cooldown (stable)
    return [Candidate(target, account, panic=True) for _, _, target, account in unhealthy]


def fails_fast(route: Route) -> bool:
    return (route.on_all_open or settings.GATEWAY_BREAKER_ON_ALL_OPEN) == "fail_fast"


def _priority(route: Route) -> list[tuple[Target, Account]]:
    return [(t, a) for t in _weighted_by_priority(route.targets) for a in _weighted_by_priority(t.provider.accounts)]


def _weighted(route: Route) -> list[tuple[Target, Account]]:
    pairs = [(t, a) for t in route.targets for a in t.provider.accounts]
    weights = [max(t.weight, 0) * max(a.weight, 0) or 1 for t, a in pairs]
    ordered = []
    while pairs:
        i = random.choices(range(len(pairs)), weights=weights)[0]
        ordered.append(pairs.pop(i))
        weights.pop(i)
    return ordered


def _least_busy(route: Route) -> list[tuple[Target, Account]]:
    return sorted(_priority(route), key=lambda pair: _inflight[pair[1].id])  # sorted() is stable


def _round_robin(route: Route) -> list[tuple[Target, Account]]:
    pairs = [(t, a) for t in sorted(route.targets, key=lambda t: t.priority)
             for a in sorted(t.provider.accounts, key=lambda a: a.priority)]  # fmt: skip
    if len(pairs) <= 1:
        return pairs
    turn = next(_turns.setdefault(route.alias, itertools.count())) % len(pairs)
    return pairs[turn:] + pairs[:turn]


def _weighted_by_priority(items):
    if len(items) <= 1:
        return list(items)
    ordered = []
    for priority in sorted({i.priority for i in items}):
        group = [i for i in items if i.priority == priority]
        while group:
            pick = random.choices(group, weights=[max(i.weight, 0) or 1 for i in group])[0]
            group.remove(pick)
            ordered.append(pick)
    return ordered


STRATEGIES = {"priority": _priority, "weighted": _weighted, "least_busy": _least_busy, "round_robin": _round_robin}
