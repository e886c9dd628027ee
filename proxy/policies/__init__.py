"""Request policies: what is decided about a request before any upstream sees it, and settled when it ends.

proxy/core.py calls exactly two functions, one on each side of the upstream call:

    ticket = await admit(call, snapshot, route, body, body_bytes)     raises RateLimited / BudgetExceeded
    settle(ticket, call, cost)                                         never raises, never waits

`admit` gathers every limit that applies to the key:
    limits.py    RPM and TPM per key and per project (sliding windows), concurrent requests per key
    budgets.py   USD per month and per day, per project and per key, reserved at the request's maximum cost
and asks the state store (store.py: Redis when REDIS_URL is set, else this process) to take them all or none,
in ONE round trip that also reads the circuit breakers of the route's accounts (breaker.py uses them to skip
unhealthy accounts). TPM admits on an estimate (request bytes / 3 + the request's max output tokens) and the
budget reserves input estimate x input price + max output tokens x output price, the dearest of the route's
targets, so N concurrent requests can never spend more than the budget allows, whatever their order.

`settle` runs ONE round trip in the background once the answer has ended, successfully or not: TPM corrected
to the real token count, each budget reservation replaced by the exact cost (Decimal, from the ledger's own
computation), the concurrency lease released, a recovering account's breaker closed.

With no limit or budget on the key, admit makes no state call at all (breaker health comes from a cache that is
at most GATEWAY_BREAKER_SYNC_SECONDS old), so an unconfigured gateway pays nothing for this layer.

How to add a policy
  1. A module here with a function that turns (key, estimates) into state specs (Window, Concurrency, Budget)
     or, for a policy that needs no shared counter, a check that raises a GatewayError subclass.
  2. Call it from `admit` below (and, if it holds something, release it in `settle`).
  3. Give its refusal an error class in proxy/errors.py (rendered in every caller format by formats/*/errors).
Policies that change the request or answer it without an upstream (response cache, token reduction) do not
belong here: they plug in at the marked step in proxy/core.py.
"""

import asyncio
import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
from django.conf import settings

from usage import metrics

from .. import breaker
from ..canonical import Limits
from ..errors import Unavailable
from . import budgets, limits
from .state import Admission, StateUnavailable
from .store import get_state

log = logging.getLogger(__name__)
_background: set[asyncio.Task] = set()


@dataclass(slots=True)
class Ticket:
    """What admit took for one request; settle gives it back."""

    windows: list = field(default_factory=list)
    budgets: list = field(default_factory=list)
    admission: Admission | None = None
    limits: Limits = field(default_factory=Limits)
    health: dict = field(default_factory=dict)


async def admit(call, snapshot, route, body: dict, body_bytes: int) -> Ticket:
    key = call.key
    call.ticket = ticket = Ticket()  # set first: a refusal's response still shows the limit headers
    if limits.any_for(key) or budgets.any_for(key):
        max_output = output_ceiling(body, route)
        input_estimate = math.ceil((body_bytes or len(orjson.dumps(body))) / 3)  # a dict comes from a batch job
        ticket.windows, concurrency = limits.specs(key, input_estimate + max_output)
        ticket.budgets = budgets.specs(key, budgets.max_cost(snapshot, route, body, input_estimate, max_output))
        ticket.admission = await _admit(call, ticket, concurrency, route.account_ids)
        breaker.remember(ticket.admission.breakers)
        ticket.limits = limits.view(ticket.admission, ticket.windows)
        if not ticket.admission.admitted:
            _refuse(call, ticket)
        budgets.alert(key, ticket.budgets, ticket.admission)
    ticket.health = await breaker.health(route.account_ids)
    return ticket


async def _admit(call, ticket: Ticket, concurrency: list, account_ids) -> Admission:
    args = (call.request_id, ticket.windows, concurrency, ticket.budgets, list(account_ids))
    try:
        admission = await _take(*args)
        if admission.unseeded:
            await budgets.seed(get_state(), admission.unseeded, ticket.budgets)
            admission = await _take(*args)
    except StateUnavailable:
        raise Unavailable("limits cannot be checked right now (the policy store is down)", retry_after="5") from None
    return admission


async def _take(request_id, *specs) -> Admission:
    """state.admit, shielded: a client that leaves mid-call must not leave what the script took behind."""
    task = asyncio.ensure_future(get_state().admit(request_id, *specs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda done: _give_back(request_id, done))
        raise


def _give_back(request_id: str, done: asyncio.Task) -> None:
    if done.cancelled() or done.exception() is not None or not done.result().admitted:
        return
    _spawn(get_state().settle(request_id, done.result(), actual_costs={}, budget_actuals={}))


def _refuse(call, ticket: Ticket):
    refused_by = ticket.admission.refused_by or ""
    if refused_by.startswith("budget:"):
        raise budgets.refusal(call.key, refused_by)
    metrics.rate_limit_hits.labels(call.key.project_slug, refused_by.split(":", 1)[0]).inc()
    raise limits.refusal(refused_by, ticket.admission)


def output_ceiling(body: dict, route) -> int:
    """The most output tokens this request may produce: what it asks for, else the route's default; clamped."""
    asked = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")
    if not isinstance(asked, int) or isinstance(asked, bool) or asked <= 0:
        asked = route.default_max_tokens or settings.GATEWAY_DEFAULT_MAX_TOKENS
    if route.max_output_tokens:
        asked = min(asked, route.max_output_tokens)
    return asked


def settle(ticket: Ticket | None, call, cost: Decimal) -> None:
    """Give back what admit took, with the real figures. Runs in the background: the client never waits."""
    if ticket is None:
        return
    recovered = [call.account_id] if call.succeeded and call.account_id and breaker.is_recovering(call.account_id) else []
    if ticket.admission is None or not ticket.admission.admitted:
        if recovered:
            _spawn(breaker.close(recovered[0]))
        return
    usage = call.usage
    tokens = usage.input_tokens + usage.output_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    spent = budgets.nanos(cost)
    _spawn(
        get_state().settle(
            call.request_id,
            ticket.admission,
            actual_costs={w.key: tokens for w in ticket.windows if w.key.startswith("tpm:")},
            budget_actuals={b.key: spent for b in ticket.budgets},
            breaker_success=recovered,
        )
    )
    if recovered:
        breaker.remember({recovered[0]: breaker.CLOSED})


def charge_now(charges) -> None:
    """Spending booked without an admission, from sync code (a native upstream batch's items, priced when the
    results arrive in a Celery task): (key, cost) pairs added to the budgets of each key and its project, so
    budgets hold for batches too. One short event loop for all of them; its Redis connection is closed after."""
    work = [([b.key for b in budgets.specs(key, 0)], budgets.nanos(cost)) for key, cost in charges if key is not None]
    work = [(keys, spent) for keys, spent in work if keys and spent]
    if not work:
        return

    async def add_all():
        state = get_state()
        try:
            for keys, spent in work:
                await state.budget_add(keys, spent)
        finally:
            close = getattr(state, "aclose", None)
            if close is not None:
                await close()

    try:
        asyncio.run(add_all())
    except Exception as exc:  # the ledger has the rows: a total that missed them is rebuilt from it when reseeded
        log.warning("adding native batch spending to budgets failed: %r", exc)


def _spawn(coro) -> None:
    try:
        task = asyncio.get_running_loop().create_task(coro)
    except RuntimeError:  # no event loop here (a sync caller): settle inline
        asyncio.run(coro)
        return
    _background.add(task)
    task.add_done_callback(_settled)


def _settled(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("settling a request's limits failed: %r", task.exception())


async def drain(timeout: float = 5.0) -> None:
    """Wait for pending settles (shutdown, batch jobs, tests)."""
    loop = asyncio.get_running_loop()
    pending = [task for task in _background if task.get_loop() is loop]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
