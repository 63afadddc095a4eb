"""The webhook's rate limit: one limit per deployment, kept in Django's cache (Redis when REDIS_URL is
set, so every web process on every host counts together; without Redis, each process counts alone).

A fixed window per source that opens at the source's first request and lasts WEBHOOK_RATE_BURST ÷
WEBHOOK_RATE_PER_SECOND seconds, admitting WEBHOOK_RATE_BURST requests: a TradingView burst (dozens
of alerts in one second) fits, and the long-run rate is WEBHOOK_RATE_PER_SECOND. A source straddling
two windows may get up to twice the burst through; that is the price of one counter per source.

IPv4 addresses count one by one; IPv6 addresses by /64, the smallest block a site is given, since
one host can pick any address inside its /64.
"""

import hashlib
import ipaddress
import logging
import secrets
import time
import weakref
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

logger = logging.getLogger(__name__)


def rate_key(address: str) -> str:
    """The unit that shares one limit: an IPv4 address, or the /64 an IPv6 address lies in."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # not an address (no REMOTE_ADDR at all): a short digest keeps the key tidy
        return "other-" + hashlib.sha256(address.encode(errors="replace")).hexdigest()[:16]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Admission:
    """The front door's answer for one request, from one round trip to the cache."""

    wait: float  # 0 when the request may go ahead (it was counted); else seconds until its window ends
    # The deployment's strategy-settings generation, read in the same round trip (preferences/intake.py):
    # None when the cache is not shared between processes (or is unreachable), so nothing may be cached.
    strategies: str | None = None


class RateLimiter:
    def __init__(self, *, namespace: str = "webhook-rate", cache_alias: str = "default") -> None:
        self.namespace = namespace
        self.cache_alias = cache_alias
        self._epoch = "0"  # every process starts in the same epoch, so they share the counts
        self._last_error_log = 0.0

    @property
    def _cache(self) -> BaseCache:
        return caches[self.cache_alias]

    def wait_needed(self, address: str) -> float:
        """0 when the request may go ahead (and counts it); else seconds until the window ends."""
        return self.admit(address).wait

    def admit(self, address: str) -> Admission:
        """Counts the request in its source's window and, with Redis, reads the strategy generation."""
        burst, rate = settings.WEBHOOK_RATE_BURST, settings.WEBHOOK_RATE_PER_SECOND
        window = burst / rate
        key = f"{self.namespace}:{self._epoch}:{rate_key(address)}"
        try:
            count, remaining, generation = self._hit(key, window)
        except Exception as error:  # the cache is down: let signals in rather than refuse every one
            self._log_unavailable(error)
            return Admission(0.0)
        return Admission(0.0 if count <= burst else max(remaining, 0.001), generation)

    def _hit(self, key: str, window: float) -> tuple[int, float, str | None]:
        """Counts one request in the source's window: (requests so far, seconds the window has left,
        the strategy generation when the cache is shared)."""
        cache = self._cache
        if isinstance(cache, RedisCache):
            return _hit_redis(cache, key, window)
        count, left = _hit_atomic_cache(cache, key, window)
        return count, left, None

    def warm_up(self) -> None:
        """Connect to the shared cache and load the admission script into it, counting nothing: a
        process's first request then pays neither (nor importing redis-py, which Django's cache does
        on first use). Raises what the cache raises."""
        cache = self._cache
        if isinstance(cache, RedisCache):
            scripts = _scripts(cache)
            scripts.client.script_load(_ADMIT)

    def _log_unavailable(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 10:
            self._last_error_log = now
            logger.warning("webhook rate limit not applied: the cache is unavailable (%s)", type(error).__name__)

    def reset(self) -> None:
        """Forget every count of this limiter (tests): later requests use fresh keys, and the old
        ones expire on their own, without a scan of the shared cache."""
        self._epoch = secrets.token_hex(6)


# KEYS[1]: the source's counter; KEYS[2]: the strategy generation; ARGV[1]: the window in ms.
# INCR opens a window at the source's first request (a new key, no expiry yet: it gets the window).
# A generation lost with Redis's memory is made anew from Redis's clock, so no process mistakes the
# settings it cached before for current ones.
_ADMIT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
local generation = redis.call('GET', KEYS[2])
if not generation then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], 'restart-' .. now[1] .. '.' .. now[2], 'NX')
  generation = redis.call('GET', KEYS[2])
end
return {count, left, generation}
"""


def _hit_redis(cache: RedisCache, key: str, window: float) -> tuple[int, float, str | None]:
    # One script, one round trip: Django's RedisCache.incr asks EXISTS before INCR, and a MULTI/EXEC
    # pipeline costs redis-py ~3x the Python of one EVALSHA (docs/BENCHMARKS.md).
    scripts = _scripts(cache)
    count, left_ms, generation = scripts.admit(
        keys=[cache.make_and_validate_key(key), scripts.generation_key],
        args=[max(1, int(window * 1000))],
    )
    return int(count), int(left_ms) / 1000, generation.decode() if isinstance(generation, bytes) else str(generation)


def strategies_changed() -> None:
    """A new strategy generation for every process of the deployment (called after a strategy's
    change commits); a no-op without a shared cache, where nothing is cached."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        scripts = _scripts(cache)
        scripts.client.set(scripts.generation_key, secrets.token_hex(8))


class _Scripts:
    def __init__(self, cache: RedisCache) -> None:
        self.client = cache._cache.get_client(write=True)
        self.admit = self.client.register_script(_ADMIT)
        self.generation_key = cache.make_and_validate_key("strategy-generation")


_SCRIPTS: "weakref.WeakKeyDictionary[RedisCacheClient, _Scripts]" = weakref.WeakKeyDictionary()


def _scripts(cache: RedisCache) -> _Scripts:
    """A redis-py client over the cache's write pool and its registered script, made once per cache
    connection (Django keeps one per thread, with its pool). RedisCache.get_client makes a new client
    per call, and a client's constructor fills a table of ~170 reply parsers: ~60 µs of every request."""
    backend = cache._cache
    scripts = _SCRIPTS.get(backend)
    if scripts is None:
        scripts = _SCRIPTS[backend] = _Scripts(cache)
    return scripts


def _hit_atomic_cache(cache: BaseCache, key: str, window: float) -> tuple[int, float]:
    """Any backend whose add and incr are atomic; meant for local memory, where none is a round trip."""
    now = time.time()
    if cache.add(key, 1, window):
        cache.set(f"{key}:opened", now, window)
        return 1, window
    try:
        count = cache.incr(key)
    except ValueError:  # the window closed between the two calls: this request opens no new one
        return 1, window
    opened = cache.get(f"{key}:opened", now)
    return count, max(0.0, opened + window - now)


RATE_LIMITER = RateLimiter()
