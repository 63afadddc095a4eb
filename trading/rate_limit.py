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

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis import Redis

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
        burst, rate = settings.WEBHOOK_RATE_BURST, settings.WEBHOOK_RATE_PER_SECOND
        window = burst / rate
        key = f"{self.namespace}:{self._epoch}:{rate_key(address)}"
        try:
            count, remaining = self._hit(key, window)
        except Exception as error:  # the cache is down: let signals in rather than refuse every one
            self._log_unavailable(error)
            return 0.0
        if count <= burst:
            return 0.0
        return max(remaining, 0.001)

    def _hit(self, key: str, window: float) -> tuple[int, float]:
        """Counts one request in the source's window: (requests so far, seconds the window has left)."""
        cache = self._cache
        if isinstance(cache, RedisCache):
            return _hit_redis(cache, key, window)
        return _hit_atomic_cache(cache, key, window)

    def _log_unavailable(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 10:
            self._last_error_log = now
            logger.warning("webhook rate limit not applied: the cache is unavailable (%s)", type(error).__name__)

    def reset(self) -> None:
        """Forget every count of this limiter (tests): later requests use fresh keys, and the old
        ones expire on their own, without a scan of the shared cache."""
        self._epoch = secrets.token_hex(6)


def _hit_redis(cache: RedisCache, key: str, window: float) -> tuple[int, float]:
    # Django's RedisCache.incr asks EXISTS before INCR (two round trips) and add + incr would be
    # three: one MULTI/EXEC pipeline opens the window, counts, and reads its time left in one.
    full_key = cache.make_and_validate_key(key)
    window_ms = max(1, int(window * 1000))
    client = _client(cache)
    pipe = client.pipeline(transaction=True)
    pipe.set(full_key, 0, px=window_ms, nx=True)
    pipe.incr(full_key)
    pipe.pttl(full_key)
    _, count, left_ms = pipe.execute()
    if left_ms < 0:  # a key without expiry would count forever: give it its window back
        client.pexpire(full_key, window_ms)
        left_ms = window_ms
    return int(count), left_ms / 1000


_CLIENTS: "weakref.WeakKeyDictionary[RedisCacheClient, Redis]" = weakref.WeakKeyDictionary()


def _client(cache: RedisCache) -> Redis:
    """A redis-py client over the cache's write pool, made once per cache connection (Django keeps
    one per thread, with its pool). RedisCache.get_client makes a new client per call, and a client's
    constructor fills a table of ~170 reply parsers: ~60 µs of every request."""
    backend = cache._cache
    client = _CLIENTS.get(backend)
    if client is None:
        client = _CLIENTS[backend] = backend.get_client(write=True)
    return client


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
