"""The exchange's 1-minute klines, imported once and kept (analytics.models.Kline): what-if replays of
recorded alerts (issue #21) trigger stops, ladders and trailing stops where the market went.

`klines_import(exchange, symbol, start, end)` imports the minutes of [start, end) that the database
does not hold yet, and only those: it finds the gaps first, so importing a period again asks the
exchange nothing, and an import cut short resumes where it stopped. Each gap is read page by page
(Exchange.get_klines, at most KLINES_PAGE_MAX minutes a page, each page asking for exactly the
minutes it lacks, so a short gap costs the least weight).

Weight-aware: the exchange counts request weight per minute for the whole IP (the worker's orders
share it). Before each page, when the weight used this minute (Exchange.request_weight()) plus the
page's would pass WEIGHT_SHARE of the limit, the import sleeps until the minute turns.

Rows are written with bulk_create(ignore_conflicts=True) on the (symbol, open_time) unique
constraint: two imports of the same period at once both succeed, and each minute is held once.
Only minutes that have closed are imported (the current minute's kline is still moving); a minute
the exchange has no kline for (before a listing, during a halt) stays missing, and is asked for
again by the next import of its period.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from analytics.models import Kline as KlineRow
from trading.exchange import Exchange
from trading.exchange.base import KLINES_PAGE_MAX, Kline, klines_weight

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
MAX_PERIOD = timedelta(days=90)  # per import: 129,600 minutes, 87 pages
# The share of the exchange's weight budget an import may bring the minute to; the rest is left to
# the orders of the worker, which share the IP's budget.
WEIGHT_SHARE_PERCENT = 80
TURN_MARGIN = 1.0  # seconds slept past the minute's turn: this host's clock and the exchange's differ a little


@dataclass(frozen=True)
class ImportResult:
    symbol: str
    minutes: int  # closed minutes in the period
    missing: int  # of those, not held before the import
    pages: int  # requests made
    added: int  # rows written (held now, missing before)
    waited: float  # seconds slept for the exchange's weight budget

    def __str__(self) -> str:
        if not self.missing:
            return f"{self.symbol}: all {self.minutes} minutes already held; nothing asked of the exchange"
        text = (f"{self.symbol}: {self.added} of {self.missing} missing minutes added ({self.minutes} in the period), "
                f"{self.pages} page{'s' if self.pages != 1 else ''}")
        if self.waited:
            text += f", waited {self.waited:.0f} s for the exchange's weight limit"
        if self.added < self.missing:
            text += f"; the exchange has no kline for {self.missing - self.added} of them"
        return text


def klines_import(exchange: Exchange, symbol: str, start: datetime, end: datetime, *,
                  sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> ImportResult:
    """Import the 1-minute klines of `symbol` opened in [start, end) that the database lacks. `clock`
    (epoch seconds) and `sleep` are the host's, injectable. ValueError for a period that is not in
    the past or is longer than MAX_PERIOD; the exchange's errors (ExchangeError) pass through, with
    the pages already read kept."""
    first, last = _minutes(start, end, now=datetime.fromtimestamp(clock(), UTC))
    minutes = 0 if last < first else (last - first) // MINUTE + 1
    gaps = _gaps(symbol, first, last)
    missing = sum((gap_last - gap_first) // MINUTE + 1 for gap_first, gap_last in gaps)
    pages, added, waited = 0, 0, 0.0
    for gap_first, gap_last in gaps:
        page_first = gap_first
        while page_first <= gap_last:
            page_last = min(gap_last, page_first + (KLINES_PAGE_MAX - 1) * MINUTE)
            count = (page_last - page_first) // MINUTE + 1
            waited += _weight_wait(exchange, klines_weight(count), sleep=sleep, clock=clock)
            klines = exchange.get_klines(symbol, start_ms=_ms(page_first), end_ms=_ms(page_last), limit=count)
            pages += 1
            added += _write(symbol, klines, page_first, page_last)
            page_first = page_last + MINUTE
    result = ImportResult(symbol=symbol, minutes=minutes, missing=missing, pages=pages, added=added, waited=waited)
    logger.info("klines import: %s", result)
    return result


def _minutes(start: datetime, end: datetime, *, now: datetime) -> tuple[datetime, datetime]:
    """The first and last minute (open times) to hold for [start, end): those opened in it that have
    closed by `now`. ValueError, in words, for a period that cannot be imported."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("give the period's start and end with their time zone (UTC): a naive time is ambiguous")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ValueError(f"the period is empty: it ends ({end:%Y-%m-%d %H:%M} UTC) before it starts "
                         f"({start:%Y-%m-%d %H:%M} UTC)")
    if end - start > MAX_PERIOD:
        raise ValueError(f"the period from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC is "
                         f"{(end - start) / timedelta(days=1):.1f} days long: import at most {MAX_PERIOD.days} days "
                         "at a time")
    if end > now:
        raise ValueError(f"the period ends in the future ({end:%Y-%m-%d %H:%M} UTC, now {now:%Y-%m-%d %H:%M} UTC): "
                         "the exchange has klines only for minutes that have passed")
    first = _floor(start) if start == _floor(start) else _floor(start) + MINUTE
    last = min(_floor(end - timedelta(microseconds=1)), _floor(now) - MINUTE)  # opened before end, and closed
    return first, last


def _gaps(symbol: str, first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
    """The runs of minutes from `first` to `last` (inclusive) that the database lacks, oldest first."""
    if last < first:
        return []
    held = set(KlineRow.objects.filter(symbol=symbol, open_time__gte=first, open_time__lte=last)
               .values_list("open_time", flat=True))
    gaps: list[tuple[datetime, datetime]] = []
    run_first: datetime | None = None
    minute = first
    while minute <= last:
        if minute in held:
            if run_first is not None:
                gaps.append((run_first, minute - MINUTE))
                run_first = None
        elif run_first is None:
            run_first = minute
        minute += MINUTE
    if run_first is not None:
        gaps.append((run_first, last))
    return gaps


def _weight_wait(exchange: Exchange, weight: int, *, sleep: Callable[[float], None], clock: Callable[[], float]) -> float:
    """Sleep until the minute turns when this page would bring the minute's weight past the share an
    import may use; the seconds slept."""
    budget = exchange.request_weight()
    if budget is None:
        return 0.0
    used, limit = budget
    if (used + weight) * 100 <= limit * WEIGHT_SHARE_PERCENT:
        return 0.0
    seconds = 60 - clock() % 60 + TURN_MARGIN
    logger.info("klines import: %s of %s request weight used this minute; waiting %.0f s for the next", used, limit,
                seconds)
    sleep(seconds)
    return seconds


def _write(symbol: str, klines: list[Kline], first: datetime, last: datetime) -> int:
    """Hold the page's klines (those of the symbol, on a minute from `first` to `last`); how many of its
    minutes are held now (all were missing before)."""
    rows = [
        KlineRow(symbol=symbol, open_time=kline.open_time, open=kline.open, high=kline.high, low=kline.low,
                 close=kline.close, volume=kline.volume)
        for kline in klines
        if kline.symbol == symbol and first <= kline.open_time <= last and kline.open_time == _floor(kline.open_time)
    ]
    KlineRow.objects.bulk_create(rows, ignore_conflicts=True)
    return KlineRow.objects.filter(symbol=symbol, open_time__gte=first, open_time__lte=last).count()


def _floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000
