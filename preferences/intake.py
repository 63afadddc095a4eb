"""The strategy settings the webhook checks, kept in each web process while they are current.

A strategy's row is read once per process and reused while the deployment's *strategy generation* is
unchanged: a token in Redis that every saved or deleted strategy replaces once its transaction commits
(`generation_bump` below), and that the webhook reads in the round trip its rate limit makes anyway
(trading/rate_limit.py). A change is so in force from the next request on, in every process, and a
request costs no strategy SELECT: ~450 µs of the webhook's ~2 ms (docs/BENCHMARKS.md).

Without a shared cache (no REDIS_URL, or Redis unreachable) there is no generation and nothing is
kept: every request reads the row. What could still slip past a generation — a change that bypasses
model signals (QuerySet.update, raw SQL; the one such write in the code, `halted_until` in
trading/risk.py, is not a field the webhook reads), or a bump lost while Redis was away — lasts at most
MAX_AGE: every process reads its strategies again at least that often.
"""

import logging
import time
from collections.abc import Callable

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from preferences.models import StrategyPreference
from trading.rate_limit import strategies_changed

logger = logging.getLogger(__name__)
Loader = Callable[[str], StrategyPreference | None]
MAX_AGE = 60.0  # seconds a process trusts what it read, whatever the generation says

# What the webhook's checks read of a strategy (its passphrase, freshness limit, and trade_refusal): a
# fifth of its columns, and a fifth of the work of turning the row into an object. Reading another
# field of it costs a query of its own (test_webhook_fast_path.py counts them).
CHECKED_FIELDS = ("passphrase_hash", "max_signal_age", "enabled", "products")


def strategy_read(name: str) -> StrategyPreference | None:
    """The strategy's checked fields. Names are unique, so no ORDER BY (first() would sort by name)."""
    found = list(StrategyPreference.objects.filter(name=name).only(*CHECKED_FIELDS).order_by()[:1])
    return found[0] if found else None


class IntakeStrategies:
    """Strategies by name (and names that are none, so a typo costs one read, not one per request),
    valid for one generation. Bounded: senders choose the names, so past `size` it starts over."""

    def __init__(self, load: Loader, *, size: int = 512, max_age: float = MAX_AGE) -> None:
        self.load = load
        self.size = size
        self.max_age = max_age
        self.generation: str | None = None
        self.since = 0.0
        self.known: dict[str, StrategyPreference | None] = {}

    def get(self, name: str, generation: str | None) -> StrategyPreference | None:
        if generation is None:  # nothing tells this process when a strategy changes: read it
            self.forget()
            return self.load(name)
        now = time.monotonic()
        if generation != self.generation or now - self.since > self.max_age:
            self.known = {}
            self.generation, self.since = generation, now
        try:
            return self.known[name]
        except KeyError:
            pass
        found = self.load(name)
        if len(self.known) >= self.size:
            self.known = {}
        self.known[name] = found
        return found

    def forget(self) -> None:
        self.known = {}
        self.generation = None


STRATEGIES = IntakeStrategies(strategy_read)


@receiver(post_save, sender=StrategyPreference, dispatch_uid="strategy-generation-save")
@receiver(post_delete, sender=StrategyPreference, dispatch_uid="strategy-generation-delete")
def generation_bump(**kwargs: object) -> None:
    """This process reads the strategy again now; every other one once the change commits (before,
    it would read the old row: the change is not visible to it yet)."""
    STRATEGIES.forget()
    transaction.on_commit(_bump)


def _bump() -> None:
    try:
        strategies_changed()
    except Exception as error:  # the change is committed; processes read it again within MAX_AGE
        logger.warning("strategy change not announced to the web processes (%s: %s); in force within %.0f s",
                       type(error).__name__, error, MAX_AGE)
