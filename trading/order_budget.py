"""The deployment's order budget: one object every sender asks before an order goes out, so that all
worker processes and their threads together stay inside the exchange's rate limits (Binance: 300
orders per 10 s and 1,200 per minute per account, 2,400 request weight per minute per IP) and a
burst never earns a 429, let alone a 418 ban.

Each ask reserves a moment: the earliest at which one more order keeps every window within its limit,
and never before the last moment granted, so a burst larger than the budget goes out in the order its
senders asked (receipt order, up to the few milliseconds of deciding). The sender sleeps until then,
through its Mandate (lane checked, deadline kept), and the execution says how long it waited.

- Windows slide, and are kept WINDOW_MARGIN longer than the exchange's: the exchange counts fixed
  windows on its own clock, and an order granted earlier can reach it after one granted later; any of
  its windows then sees at most its limit.
- What the exchange says it counted (from its answers' headers, read by the adapter) is folded in at
  the next ask: orders of the account that no grant accounts for (another program, a trade by hand)
  take places in the windows, and a request weight near its limit holds orders until its minute ends.
- Shared through Redis when REDIS_URL is set (one script, one round trip; Redis's clock), else through
  the database (the account's `OrderBudget` row, locked for the ask; the database's clock).
- An exchange without limits (paper) costs nothing: no round trip at all.
"""

import bisect
import logging
import time
import weakref
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.db import connection, transaction
from django.db.models import FloatField
from django.db.models.expressions import RawSQL

from trading.exchange import Exchange, RateLimits, RateUsage
from trading.models import OrderBudget

logger = logging.getLogger(__name__)

WINDOW_MARGIN = 0.1  # each window is kept this much longer (10 s → 11 s)
WEIGHT_RESERVE = 0.05  # of the weight limit, left for requests other threads make between two answers


# --- the rule, on plain numbers (seconds) ---------------------------------------------------------------
def next_grant(grants: list[float], now: float, windows: list[tuple[int, float]]) -> float:
    """The earliest moment, not before `now` nor the last grant, at which one more grant leaves at most
    `limit` grants within any `seconds`, for each (limit, seconds) window. `grants`: oldest first."""
    at = max(now, grants[-1]) if grants else now
    for limit, seconds in windows:
        if len(grants) >= limit:
            at = max(at, grants[-limit] + seconds)
    return at


def exchange_counted(grants: list[float], counted: tuple[int, ...], at: float, windows: list[tuple[int, float]]) -> None:
    """Add grants at `at` until each window of the exchange's length ending at `at` holds what the
    exchange counted in it (orders our grants do not account for: sent by someone else)."""
    for count, (_, seconds) in zip(counted, windows, strict=False):
        ours = bisect.bisect_right(grants, at) - bisect.bisect_right(grants, at - seconds)
        for _ in range(count - ours):
            bisect.insort(grants, at)


def weight_hold(weight: int, until: float, now: float, limit: int | None) -> float:
    """When orders may go as far as request weight goes: `now`, or the end of a minute that used it up."""
    if limit is not None and weight >= limit * (1 - WEIGHT_RESERVE) and until > now:
        return until
    return now


def _kept(limits: RateLimits) -> list[tuple[int, float]]:
    return [(limit, seconds * (1 + WINDOW_MARGIN)) for limit, seconds in limits.orders]


# --- the one object ----------------------------------------------------------------------------------
class Budget:
    def take(self, exchange: Exchange) -> float:
        """Reserve the next moment the exchange's account may be sent an order; seconds until then."""
        limits = exchange.rate_limits()
        if not limits.orders and limits.weight_per_minute is None:
            return 0.0
        usage, host_now = exchange.rate_usage(), time.time()
        cache = caches["default"]
        if isinstance(cache, RedisCache):
            try:
                return _take_redis(cache, exchange.account_id, limits, usage, host_now)
            except Exception as error:  # Redis is away: the exchange's own 429 handling still holds
                logger.warning("order budget unavailable (%s: %s): sending without it", type(error).__name__, error)
                return 0.0
        return _take_database(exchange.account_id, limits, usage, host_now)


ORDER_BUDGET = Budget()


# --- the database ------------------------------------------------------------------------------------
def _take_database(account: str, limits: RateLimits, usage: RateUsage, host_now: float) -> float:
    kept = _kept(limits)
    longest = max((seconds for _, seconds in kept), default=0.0)
    with transaction.atomic():
        row = _locked(account)
        now: float = row.now  # type: ignore[attr-defined]  # annotated by _locked: the database's clock
        grants = [at for at in row.grants if at > now - longest]
        if usage.orders and host_now - usage.orders_at < min(seconds for _, seconds in limits.orders):
            exchange_counted(grants, usage.orders, now - (host_now - usage.orders_at), list(limits.orders))
        until = now + (usage.weight_until - host_now)
        if until > now and (until > row.weight_until + 1 or (abs(until - row.weight_until) <= 1 and usage.weight > row.weight)):
            row.weight, row.weight_until = usage.weight, until
        at = max(next_grant(grants, now, kept), weight_hold(row.weight, row.weight_until, now, limits.weight_per_minute))
        grants.append(at)
        OrderBudget.objects.filter(pk=row.pk).update(grants=grants, weight=row.weight, weight_until=row.weight_until)
    return at - now


def _locked(account: str) -> OrderBudget:
    """The account's row, locked until the transaction ends (made on its first order), with `now`."""
    rows = OrderBudget.objects.select_for_update().annotate(now=_database_clock())
    row = rows.filter(account=account).first()
    if row is None:
        OrderBudget.objects.get_or_create(account=account)  # another sender's at the same moment does too
        row = rows.get(account=account)
    return row


def _database_clock() -> RawSQL:
    """The database's clock in epoch seconds, read with the row: hosts whose clocks differ agree. On
    PostgreSQL clock_timestamp(), which a row lock waited for is read after (the row is fetched again):
    the statement's own timestamp would predate the wait, and the last grant then look in the future."""
    if connection.vendor == "postgresql":
        return RawSQL("EXTRACT(EPOCH FROM clock_timestamp())::float8", [], output_field=FloatField())
    if connection.vendor == "sqlite":
        return RawSQL("(julianday('now') - 2440587.5) * 86400.0", [], output_field=FloatField())
    return RawSQL("%s", [time.time()], output_field=FloatField())


# --- Redis -------------------------------------------------------------------------------------------
# KEYS: the account's grants (a sorted set, scores in ms on Redis's clock), its weight (a hash: used,
# until), a counter that tells grants apart. ARGV: the number of windows n; per window its limit, the
# exchange's length (ms), the length kept (ms), what the exchange counted in it (-1: not said); then
# how long ago it said so (ms; -1: never), the weight used (-1: not said), ms until its minute ends,
# and the weight that holds orders (0: none). Returns the ms until the moment granted.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local tail = 1 + 4 * n
local longest = 0
for i = 0, n - 1 do longest = math.max(longest, tonumber(ARGV[4 + 4 * i])) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - longest))
local age = tonumber(ARGV[tail + 1])
if age >= 0 then
  local said = now - age
  for i = 0, n - 1 do
    local counted = tonumber(ARGV[5 + 4 * i])
    if counted > 0 then
      local since = string.format('(%d', said - tonumber(ARGV[3 + 4 * i]))
      local ours = redis.call('ZCOUNT', KEYS[1], since, string.format('%d', said))
      for _ = 1, counted - ours do
        redis.call('ZADD', KEYS[1], string.format('%d', said), 'x' .. redis.call('INCR', KEYS[3]))
      end
    end
  end
end
local used = tonumber(ARGV[tail + 2])
if used >= 0 then
  local ends = now + tonumber(ARGV[tail + 3])
  local stored = redis.call('HMGET', KEYS[2], 'used', 'until')
  local newer = not stored[2] or ends > tonumber(stored[2]) + 1000
  if newer or (math.abs(ends - tonumber(stored[2])) <= 1000 and used > tonumber(stored[1])) then
    redis.call('HSET', KEYS[2], 'used', used, 'until', string.format('%d', ends))
    redis.call('PEXPIRE', KEYS[2], math.max(1, ends - now))
  end
end
local at = now
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then at = math.max(at, tonumber(last[2])) end
for i = 0, n - 1 do
  local limit = tonumber(ARGV[2 + 4 * i])
  local nth = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
  if nth[2] then at = math.max(at, tonumber(nth[2]) + tonumber(ARGV[4 + 4 * i])) end
end
local holding = tonumber(ARGV[tail + 4])
if holding > 0 then
  local weight = redis.call('HMGET', KEYS[2], 'used', 'until')
  if weight[2] and tonumber(weight[1]) >= holding and tonumber(weight[2]) > now then at = math.max(at, tonumber(weight[2])) end
end
redis.call('ZADD', KEYS[1], string.format('%d', at), 'g' .. redis.call('INCR', KEYS[3]))
redis.call('PEXPIRE', KEYS[1], math.max(1, at - now + longest))
return at - now
"""

_SCRIPTS: "weakref.WeakKeyDictionary[RedisCacheClient, Any]" = weakref.WeakKeyDictionary()


def _take_redis(cache: RedisCache, account: str, limits: RateLimits, usage: RateUsage, host_now: float) -> float:
    backend = cache._cache  # Django keeps one per thread, with its connection pool
    script = _SCRIPTS.get(backend)
    if script is None:
        script = _SCRIPTS[backend] = backend.get_client(write=True).register_script(_TAKE)
    args: list[float | int] = [len(limits.orders)]
    counted = usage.orders if len(usage.orders) == len(limits.orders) else (-1,) * len(limits.orders)
    for (limit, seconds), (_, kept), count in zip(limits.orders, _kept(limits), counted, strict=True):
        args += [limit, round(seconds * 1000), round(kept * 1000), count]
    fresh = usage.orders and host_now - usage.orders_at < min(seconds for _, seconds in limits.orders)
    weight_said = usage.weight_until > host_now
    args += [round((host_now - usage.orders_at) * 1000) if fresh else -1,
             usage.weight if weight_said else -1, round((usage.weight_until - host_now) * 1000) if weight_said else 0,
             round(limits.weight_per_minute * (1 - WEIGHT_RESERVE)) if limits.weight_per_minute else 0]
    keys = [cache.make_and_validate_key(f"order-budget:{account}:{part}") for part in ("grants", "weight", "seq")]
    return int(script(keys=keys, args=args)) / 1000
