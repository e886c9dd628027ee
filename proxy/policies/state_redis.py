"""RedisState: the policy store shared by every process, one Lua script (one round trip) per operation. The Redis
layout is in state.py's docstring; LocalState (state_local.py) has the same semantics and tests."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
import weakref

from django.conf import settings
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from . import resp
from .state import (
    GRACE_S, PENDING_S, PREFIX, STALE_S, Admission, BreakerState, _admission, _breaker_from_redis, _breaker_ttl,
    _bucket,
)


class _Script:
    __slots__ = ("sha", "text")

    def __init__(self, text: str):
        self.text, self.sha = text, hashlib.sha1(text.encode()).hexdigest()


# A breaker's hash as one string, "u|w|t|r" (reason last: it may contain anything), or false if there is none.
_BREAKER = """
local function breaker(k)
  local v = redis.call('HMGET', k, 'u', 'w', 't', 'r')
  if not (v[1] or v[3]) then return false end
  return (v[1] or '') .. '|' .. (v[2] or '') .. '|' .. (v[3] or '') .. '|' .. (v[4] or '')
end
"""

# KEYS: windows, lease sets, budget hashes, budget holds, the request's marker, breakers.
# ARGV: now, floor(now), request id, #windows, #lease sets, #budgets, stale cutoff, marker TTL, then
# (limit, cost, window_s, bucket) per window, (limit, lease expiry, TTL) per set, (limit, reserve, expire at) per
# budget. Returns {admitted, refused index, free-at second, (used, oldest) per window, spent + reserved (-1 =
# unseeded) per budget, packed breaker per account}, the figures read before this request. At most 100 stale
# holds per budget are released per call, so one script's work stays bounded.
_ADMIT = _Script(_BREAKER + """
local cur, rid = tonumber(ARGV[2]), ARGV[3]
local nw, nc, nb = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local out, refused, unseeded, a = {0, 0, -1}, 0, false, 9
local function free_at(f, lo, need)
  local bs, v = {}, {}
  for j = 1, #f, 2 do
    local b = tonumber(f[j])
    if b > lo then bs[#bs + 1] = b; v[b] = tonumber(f[j + 1]) end
  end
  table.sort(bs)
  for _, b in ipairs(bs) do
    need = need - v[b]
    if need <= 0 then return b end
  end
  return bs[#bs]
end
for i = 1, nw do
  local k, limit, cost, win = KEYS[i], tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local f, lo, used, oldest, old = redis.call('HGETALL', k), cur - win, 0, -1, {}
  for j = 1, #f, 2 do
    local b, v = tonumber(f[j]), tonumber(f[j + 1])
    if b <= lo then old[#old + 1] = f[j] else
      used = used + v
      if v > 0 and (oldest < 0 or b < oldest) then oldest = b end
    end
  end
  if #old > 0 then redis.call('HDEL', k, unpack(old)) end
  if refused == 0 and used + cost > limit then
    refused = i
    if cost <= limit then out[3] = free_at(f, lo, used + cost - limit) + win end
  end
  out[#out + 1] = used
  out[#out + 1] = oldest
  a = a + 4
end
for i = 1, nc do
  local k = KEYS[nw + i]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', ARGV[1])
  local live = redis.call('ZCARD', k)
  if redis.call('ZSCORE', k, rid) then live = live - 1 end
  if refused == 0 and live >= tonumber(ARGV[a]) then refused = nw + i end
  a = a + 3
end
local base = nw + nc
for i = 1, nb do
  local h, z = KEYS[base + i], KEYS[base + nb + i]
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[7], 'LIMIT', 0, 100)
  for _, m in ipairs(gone) do
    local amt = string.match(m, ':(%d+)$')
    if amt and amt ~= '0' then redis.call('HINCRBY', h, 'r', '-' .. amt) end
  end
  if #gone > 0 then redis.call('ZREM', z, unpack(gone)) end
  local v = redis.call('HMGET', h, 's', 'r')
  if v[1] then
    local total = tonumber(v[1]) + tonumber(v[2] or '0')
    if refused == 0 and total + tonumber(ARGV[a + 1]) > tonumber(ARGV[a]) then refused = base + i end
    out[#out + 1] = total
  else
    unseeded = true
    out[#out + 1] = -1
  end
  a = a + 3
end
out[2] = refused
if refused == 0 and not unseeded then
  out[1], a = 1, 9
  for i = 1, nw do
    if redis.call('HINCRBY', KEYS[i], ARGV[a + 3], ARGV[a + 1]) == tonumber(ARGV[a + 1]) then
      redis.call('EXPIRE', KEYS[i], tonumber(ARGV[a + 2]) + 1)
    end
    a = a + 4
  end
  for i = 1, nc do
    redis.call('ZADD', KEYS[nw + i], ARGV[a + 1], rid)
    redis.call('EXPIRE', KEYS[nw + i], ARGV[a + 2])
    a = a + 3
  end
  for i = 1, nb do
    local z = KEYS[base + nb + i]
    if redis.call('ZADD', z, ARGV[1], rid .. ':' .. ARGV[a + 1]) == 1 and ARGV[a + 1] ~= '0' then
      redis.call('HINCRBY', KEYS[base + i], 'r', ARGV[a + 1])
    end
    redis.call('EXPIREAT', z, ARGV[a + 2])
    a = a + 3
  end
  if base + nb > 0 then redis.call('SET', KEYS[base + 2 * nb + 1], '1', 'EX', ARGV[8]) end
end
for i = base + 2 * nb + 2, #KEYS do out[#out + 1] = breaker(KEYS[i]) end
return out
""")

# KEYS: [marker], windows to correct, lease sets, budget hashes, budget holds, (breaker, probe) per recovered
# account. ARGV: now, floor(now), request id, #windows, #lease sets, #budgets, has marker, then (delta, bucket,
# window_s) per window and (actual cost, reserve) per budget. A hold released as stale is gone: ZREM says 0, so a
# late settle books its spending and releases nothing.
_SETTLE = _Script("""
local now, cur, rid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local nw, nc, nb = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local k, a = 1, 8
if ARGV[7] == '1' then
  if redis.call('DEL', KEYS[1]) == 0 then return 0 end
  k = 2
end
for i = 1, nw do
  local b = ARGV[a + 1]
  if tonumber(b) > cur - tonumber(ARGV[a + 2]) and redis.call('HEXISTS', KEYS[k], b) == 1 then
    if redis.call('HINCRBY', KEYS[k], b, ARGV[a]) < 0 then redis.call('HSET', KEYS[k], b, 0) end
  end
  k, a = k + 1, a + 3
end
for i = 1, nc do redis.call('ZREM', KEYS[k], rid); k = k + 1 end
for i = 1, nb do
  local h, amt = KEYS[k], ARGV[a + 1]
  if redis.call('ZREM', KEYS[k + nb], rid .. ':' .. amt) == 1 and amt ~= '0' then
    redis.call('HINCRBY', h, 'r', '-' .. amt)
  end
  if ARGV[a] ~= '0' and redis.call('HEXISTS', h, 's') == 1 then redis.call('HINCRBY', h, 's', ARGV[a]) end
  k, a = k + 1, a + 2
end
k = k + nb
while k < #KEYS do
  local u = redis.call('HGET', KEYS[k], 'u')
  if u and tonumber(u) > now then redis.call('HDEL', KEYS[k], 't') else redis.call('DEL', KEYS[k], KEYS[k + 1]) end
  k = k + 2
end
return 1
""")

# KEYS: breaker, probe. ARGV: now, threshold, window_s, open-until if this opens it, TTL.
_FAILURE = _Script(_BREAKER + """
local now, thr, lo = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[1]) - tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'u', 't')
local u, ts = tonumber(v[1] or '0'), {}
for x in string.gmatch(v[2] or '', '%S+') do
  if tonumber(x) > lo then ts[#ts + 1] = x end
end
ts[#ts + 1] = ARGV[1]
while #ts > math.max(thr, 1) do table.remove(ts, 1) end
redis.call('HSET', KEYS[1], 't', table.concat(ts, ' '), 'w', ARGV[3])
if (u > 0 and now >= u) or (u <= 0 and #ts >= thr) then
  redis.call('HSET', KEYS[1], 'u', ARGV[4], 'r', 'failures')
  redis.call('DEL', KEYS[2])
end
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
return breaker(KEYS[1])
""")

# KEYS: breaker, probe. ARGV: open until, reason, TTL.
_COOLDOWN = _Script(_BREAKER + """
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'u') or '0') then
  redis.call('HSET', KEYS[1], 'u', ARGV[1], 'r', ARGV[2])
  redis.call('DEL', KEYS[2])
  if redis.call('TTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
end
return breaker(KEYS[1])
""")

# KEYS: breaker, probe. ARGV: now, probe expiry, probe TTL in ms.
_PROBE = _Script("""
local u, now = tonumber(redis.call('HGET', KEYS[1], 'u') or '0'), tonumber(ARGV[1])
if u <= 0 then return 1 end
if now < u then return 0 end
local p = redis.call('GET', KEYS[2])
if p and tonumber(p) > now then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
""")

_READ = _Script(_BREAKER + """
local out = {}
for i = 1, #KEYS do out[i] = breaker(KEYS[i]) end
return out
""")

_SEED = _Script("""
redis.call('HSETNX', KEYS[1], 's', ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1
""")

_ADD = _Script("""
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HINCRBY', KEYS[i], 's', ARGV[1]) end
end
return 1
""")


class RedisState:
    """The policy state in Redis, shared by every process. One client per running event loop (a client's
    connections belong to the loop that opened them), fail-fast timeouts and no client-side retries: when Redis
    is slow or gone, FallbackState should know at once."""

    def __init__(self, url: str, *, prefix: str = PREFIX, timeout: float | None = None, stale_s: float = STALE_S):
        self.url, self.prefix, self.timeout, self.stale_s = url, prefix, timeout, stale_s
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()
        self._lean_connections: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _client(self) -> Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            timeout = self.timeout
            if timeout is None:
                timeout = float(getattr(settings, "GATEWAY_REDIS_TIMEOUT", 1.0))
            client = self._clients[loop] = Redis.from_url(
                self.url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
            )
        return client

    async def aclose(self) -> None:
        """Close the running loop's client (shutdown, tests)."""
        loop = asyncio.get_running_loop()
        lean = self._lean_connections.pop(loop, None)
        if lean is not None:
            lean.close()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    async def _eval(self, script: _Script, args: list):
        """args: numkeys, keys..., argv... The script is cached by Redis after its first EVAL (or SCRIPT LOAD).
        Sent on the loop's lean pipelined connection (resp.py): these are the calls every limited request makes."""
        conn = self._lean()
        try:
            return await conn.call("EVALSHA", script.sha, *args)
        except NoScriptError:
            return await conn.call("EVAL", script.text, *args)

    def _lean(self) -> resp.Connection:
        loop = asyncio.get_running_loop()
        conn = self._lean_connections.get(loop)
        if conn is None:
            timeout = self.timeout if self.timeout is not None else float(getattr(settings, "GATEWAY_REDIS_TIMEOUT", 1.0))
            conn = self._lean_connections[loop] = resp.Connection(self.url, timeout)
        return conn

    async def admit(self, request_id, windows, concurrency, budgets, breaker_ids, now=None) -> Admission:
        now = time.time() if now is None else now
        if not (windows or concurrency or budgets or breaker_ids):
            return _admission(True, 0, -1, [], windows, concurrency, budgets, [], {}, now, self)
        p = self.prefix
        buckets = [_bucket(now, w.window_s) for w in windows]
        keys = [p + "w:" + w.key for w in windows]
        keys += [p + "c:" + c.key for c in concurrency]
        keys += [p + "b:" + b.key for b in budgets]
        keys += [p + "bq:" + b.key for b in budgets]
        keys.append(p + "q:" + request_id)
        keys += [f"{p}k:{i}" for i in breaker_ids]
        args = [len(keys), *keys, now, math.floor(now), request_id, len(windows), len(concurrency), len(budgets),
                now - self.stale_s, PENDING_S]
        for w, b in zip(windows, buckets):
            args += (w.limit, w.cost, w.window_s, b)
        for c in concurrency:
            args += (c.limit, now + c.lease_s, c.lease_s + 1)
        for b in budgets:
            args += (b.limit, b.reserve, b.expires_at + GRACE_S)
        res = await self._eval(_ADMIT, args)
        end = 3 + 2 * len(windows) + len(budgets)
        breakers = {i: _breaker_from_redis(packed, now) for i, packed in zip(breaker_ids, res[end:])}
        raw = res[3:end]
        return _admission(res[0] == 1, res[1], res[2], raw, windows, concurrency, budgets, buckets, breakers, now, self)

    async def settle(self, request_id, admission, *, actual_costs, budget_actuals, breaker_success=(), now=None):
        ticket = admission.ticket
        held = ticket is not None and bool(ticket.windows or ticket.concurrency or ticket.budgets)
        if not held and not breaker_success:
            return
        now = time.time() if now is None else now
        p, keys, argv, counts = self.prefix, [], [], (0, 0, 0)
        if held:
            keys.append(p + "q:" + request_id)
            for w in ticket.windows:
                actual = actual_costs.get(w.key)
                if actual is not None and actual != w.cost:
                    keys.append(p + "w:" + w.key)
                    argv += (actual - w.cost, _bucket(ticket.now, w.window_s), w.window_s)
            counts = (len(keys) - 1, len(ticket.concurrency), len(ticket.budgets))
            keys += [p + "c:" + c.key for c in ticket.concurrency]
            keys += [p + "b:" + b.key for b in ticket.budgets]
            keys += [p + "bq:" + b.key for b in ticket.budgets]
            for b in ticket.budgets:
                argv += (budget_actuals.get(b.key, 0), b.reserve)
        for i in breaker_success:
            keys += (f"{p}k:{i}", f"{p}kp:{i}")
        await self._eval(_SETTLE, [len(keys), *keys, now, math.floor(now), request_id, *counts, int(held), *argv])

    async def seed_budget(self, key: str, spent: int, expires_at: int) -> None:
        await self._eval(_SEED, [1, self.prefix + "b:" + key, spent, expires_at + GRACE_S])

    async def budget_add(self, keys: list[str], spent: int) -> None:
        await self._eval(_ADD, [len(keys), *(self.prefix + "b:" + k for k in keys), spent])

    def _breaker_keys(self, account_id: int) -> tuple[str, str]:
        return f"{self.prefix}k:{account_id}", f"{self.prefix}kp:{account_id}"

    async def breaker_failure(self, account_id, *, threshold, window_s, cooldown_s, now=None) -> BreakerState:
        now = time.time() if now is None else now
        ttl = _breaker_ttl(window_s, cooldown_s)
        res = await self._eval(_FAILURE, [2, *self._breaker_keys(account_id), now, threshold, window_s,
                                          now + cooldown_s, ttl])
        return _breaker_from_redis(res, now)

    async def breaker_cooldown(self, account_id, seconds, reason, now=None) -> BreakerState:
        now = time.time() if now is None else now
        res = await self._eval(_COOLDOWN, [2, *self._breaker_keys(account_id), now + seconds, reason,
                                           _breaker_ttl(seconds)])
        return _breaker_from_redis(res, now)

    async def breaker_claim_probe(self, account_id, probe_s, now=None) -> bool:
        now = time.time() if now is None else now
        args = [2, *self._breaker_keys(account_id), now, now + probe_s, max(1, math.ceil(probe_s * 1000))]
        return await self._eval(_PROBE, args) == 1

    async def breaker_success(self, account_id, now=None) -> None:
        now = time.time() if now is None else now
        await self._eval(_SETTLE, [2, *self._breaker_keys(account_id), now, math.floor(now), "", 0, 0, 0, 0])

    async def breaker_states(self, account_ids, now=None) -> dict[int, BreakerState]:
        if not account_ids:
            return {}
        now = time.time() if now is None else now
        res = await self._eval(_READ, [len(account_ids), *(f"{self.prefix}k:{i}" for i in account_ids)])
        return {i: _breaker_from_redis(packed, now) for i, packed in zip(account_ids, res)}

    async def breaker_reset(self, account_id) -> None:
        await self._client().delete(*self._breaker_keys(account_id))

    async def forget_budgets(self, keys) -> None:
        """Delete budget totals (they are reseeded from the ledger on next use); with no keys, just a ping."""
        if not keys:
            await self._client().ping()
            return
        p = self.prefix
        await self._client().delete(*(p + "b:" + k for k in keys), *(p + "bq:" + k for k in keys))
