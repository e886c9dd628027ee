"""Which (target, account) pairs serve a request, in the order they are tried. Health always comes first:

    1. healthy accounts (breaker closed), ordered by the route's strategy;
    2. half-open accounts (cool-off over): tried only by the one request that claims the probe;
    never: open accounts (failing, rate-limited by the upstream, or with a refused credential).

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

from .routing import Account, Route, Target


@dataclass(frozen=True, slots=True)
class Candidate:
    target: Target
    account: Account
    probe: bool = False  # half-open: must claim the probe before trying


_inflight: dict[int, int] = defaultdict(int)
_turns: dict[str, itertools.count] = {}


def busy(account_id: int, delta: int) -> None:
    _inflight[account_id] += delta


def inflight(account_id: int) -> int:
    """Requests this process has in flight on the account (the management API's status reads it)."""
    return _inflight.get(account_id, 0)


def order(route: Route, health: dict) -> list[Candidate]:
    pairs = STRATEGIES.get(route.strategy, _priority)(route)
    healthy, probes = [], []
    for target, account in pairs:
        state = health.get(account.id)
        if state is None or state.state == "closed":
            healthy.append(Candidate(target, account))
        elif state.state == "half_open":
            probes.append(Candidate(target, account, probe=True))
    return healthy + probes


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
