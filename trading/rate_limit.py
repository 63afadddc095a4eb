"""The webhook's rate limit: one limit per deployment, kept in Django's cache (Redis when REDIS_URL is
set, so every web process on every host counts together; without Redis, each process counts alone).

A fixed window per source that opens at the source's first request and lasts WEBHOOK_RATE_BURST ÷
WEBHOOK_RATE_PER_SECOND seconds, admitting WEBHOOK_RATE_BURST requests: a TradingView burst (dozens
of alerts in one second) fits, and the long-run rate is WEBHOOK_RATE_PER_SECOND. A source straddling
two windows may get up to twice the burst through; that is the price of one counter per source.

IPv4 addresses count one by one; IPv6 addresses by /64, the smallest block a site is given, since
one host can pick any address inside its /64.

The same sources are blocked after too many wrong passphrases: WEBHOOK_AUTH_FAILURES within
WEBHOOK_AUTH_WINDOW seconds block a source for WEBHOOK_AUTH_BLOCK seconds. Counting a failure costs a
round trip of its own, on the refused path; whether a source is blocked is read in the admission's
round trip, so an accepted request pays nothing more for it.
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
    blocked: float = 0.0  # seconds left of the source's block for wrong passphrases; 0 when not blocked


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
        """Counts the request in its source's window and reads whether the source is blocked; with
        Redis, reads the strategy generation too."""
        burst, rate = settings.WEBHOOK_RATE_BURST, settings.WEBHOOK_RATE_PER_SECOND
        window = burst / rate
        source = self._source(address)
        try:
            count, remaining, generation, blocked = self._hit(source, window)
        except Exception as error:  # the cache is down: let signals in rather than refuse every one
            self._log_unavailable(error)
            return Admission(0.0)
        return Admission(0.0 if count <= burst else max(remaining, 0.001), generation, blocked)

    def _source(self, address: str) -> str:
        return f"{self.namespace}:{self._epoch}:{rate_key(address)}"

    def _hit(self, source: str, window: float) -> tuple[int, float, str | None, float]:
        """Counts one request in the source's window: (requests so far, seconds the window has left,
        the strategy generation when the cache is shared, seconds left of the source's block)."""
        cache = self._cache
        if isinstance(cache, RedisCache):
            return _hit_redis(cache, source, window)
        count, left = _hit_atomic_cache(cache, source, window)
        until = cache.get(f"{source}:blocked")
        return count, left, None, max(0.0, until - time.time()) if until else 0.0

    def passphrase_failed(self, address: str) -> bool:
        """Counts a wrong passphrase from the address's source. True when this one completes
        WEBHOOK_AUTH_FAILURES within WEBHOOK_AUTH_WINDOW and so starts the source's block: once per
        block, however many processes count. False, never raising, when the cache is down."""
        failures = settings.WEBHOOK_AUTH_FAILURES
        if not failures:
            return False
        source = self._source(address)
        window, block = settings.WEBHOOK_AUTH_WINDOW, settings.WEBHOOK_AUTH_BLOCK
        try:
            cache = self._cache
            if isinstance(cache, RedisCache):
                return _failed_redis(cache, source, window, failures, block)
            return _failed_atomic_cache(cache, source, window, failures, block)
        except Exception as error:
            self._log_unavailable(error)
            return False

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
            logger.warning("webhook rate limit and passphrase blocks not applied: the cache is unavailable (%s)",
                           type(error).__name__)

    def reset(self) -> None:
        """Forget every count of this limiter (tests): later requests use fresh keys, and the old
        ones expire on their own, without a scan of the shared cache."""
        self._epoch = secrets.token_hex(6)


# KEYS[1]: the source's counter; KEYS[2]: the strategy generation; KEYS[3]: the source's block for
# wrong passphrases; ARGV[1]: the window in ms.
# INCR opens a window at the source's first request (a new key, no expiry yet: it gets the window).
# A generation lost with Redis's memory is made anew from Redis's clock, so no process mistakes the
# settings it cached before for current ones. PTTL of a missing block is -2: not blocked.
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
return {count, left, generation, redis.call('PTTL', KEYS[3])}
"""

# KEYS[1]: the source's count of wrong passphrases; KEYS[2]: its block; ARGV: the window (ms), the
# failures that block, the block (ms). The count's window opens at its first failure. SET NX starts
# the block once: a failure counted while the source is already blocked (an address exempt from the
# block, or a request admitted just before the block began) starts nothing.
_FAILED = """
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
if count < tonumber(ARGV[2]) then
  return 0
end
redis.call('DEL', KEYS[1])
if redis.call('SET', KEYS[2], '1', 'PX', ARGV[3], 'NX') then
  return 1
end
return 0
"""


def _hit_redis(cache: RedisCache, source: str, window: float) -> tuple[int, float, str | None, float]:
    # One script, one round trip: Django's RedisCache.incr asks EXISTS before INCR, and a MULTI/EXEC
    # pipeline costs redis-py ~3x the Python of one EVALSHA (docs/BENCHMARKS.md).
    scripts = _scripts(cache)
    counter = cache.make_and_validate_key(source)
    count, left_ms, generation, blocked_ms = scripts.admit(
        keys=[counter, scripts.generation_key, counter + ":blocked"], args=[max(1, int(window * 1000))],
    )
    generation = generation.decode() if isinstance(generation, bytes) else str(generation)
    return int(count), int(left_ms) / 1000, generation, max(0, int(blocked_ms)) / 1000


def _failed_redis(cache: RedisCache, source: str, window: int, failures: int, block: int) -> bool:
    scripts = _scripts(cache)
    counter = cache.make_and_validate_key(source)  # the block's key is derived as admit derives it
    started = scripts.failed(keys=[counter + ":failures", counter + ":blocked"], args=[window * 1000, failures, block * 1000])
    return bool(int(started))


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
        self.failed = self.client.register_script(_FAILED)
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


def _failed_atomic_cache(cache: BaseCache, source: str, window: int, failures: int, block: int) -> bool:
    """As _FAILED, with add and incr; the block holds the time it ends, for admit to say how long."""
    counter = f"{source}:failures"
    cache.add(counter, 0, window)
    try:
        count = cache.incr(counter)
    except ValueError:  # the window closed between the two calls: this failure opens a new one
        cache.add(counter, 1, window)
        count = 1
    if count < failures:
        return False
    cache.delete(counter)
    return cache.add(f"{source}:blocked", time.time() + block, block)


RATE_LIMITER = RateLimiter()
