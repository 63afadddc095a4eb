"""When the exchange got there first: what closed a position before our reduce-only order reached it.

A strategy's exit alert and the take-profit we placed at the exchange race on every winning trade:
TradingView fires the alert the moment its target is hit, the moment the exchange triggers our order.
The close that loses the race is refused (nothing to reduce) or capped (less to reduce). That is no
failure when an order of ours closed the position, and a warning, said in words, when a liquidation
or a trade outside this system did. What we know, best first:

1. the orders the exchange reported on the user data stream (a stop-loss's or take-profit's fill, a
   liquidation, a trade placed by hand), recorded with the position's move in one transaction;
2. with the stream connected, the same a moment later: the fill that beat our order was made before
   the exchange answered us, and its event is usually milliseconds behind (STREAM_WAIT at most);
3. a fresh read of the exchange: the position (our mirror is brought in line with it) and which of
   our protective orders no longer rest there.
"""

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.utils import timezone

from trading.engine import plain
from trading.exchange import Exchange, ExchangeError
from trading.models import Order, ProtectiveOrder, WorkerHeartbeat
from trading.upkeep import positions_reconcile

logger = logging.getLogger(__name__)

STREAM_WAIT = 1.0  # seconds to wait for the stream to report the fill that beat our order
STREAM_POLL = 0.05
# The stream process beats every 15 s while connected (trading/live.py); /health gives it a minute too.
STREAM_FRESH = timedelta(seconds=60)
LIVE_PROTECTION = (ProtectiveOrder.Status.PLACING, ProtectiveOrder.Status.ACTIVE)
BY_THE_EXCHANGE = {
    Order.Source.LIQUIDATION: "the exchange liquidated {what}",
    Order.Source.ADL: "the exchange's auto-deleveraging closed {what}",
    Order.Source.SETTLEMENT: "a settlement (delisting or delivery) closed {what}",
}


class Cause(StrEnum):
    OURS = "ours"  # a stop-loss or take-profit of ours
    EXCHANGE = "exchange"  # a liquidation, auto-deleveraging or settlement
    OUTSIDE = "outside"  # a trade placed outside this system, or nothing we know of


@dataclass(frozen=True)
class ClosedFirst:
    """What closed (part of) the position before our order could."""

    cause: Cause
    words: str  # "the take-profit 46350 (order 1005) closed the position at 12:00:00.123 UTC, 30 ms before this alert"
    told: bool = True  # the trader has heard of it already (the stream notifies every fill it reports)

    @property
    def warning(self) -> bool:
        return self.cause != Cause.OURS

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cause": str(self.cause)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ClosedFirst":
        return cls(cause=Cause(data["cause"]), words=data["words"], told=bool(data.get("told", True)))


def recorded_close(symbol: str, *, position_side: str | None = None, side: str | None = None,
                   exclude: int | None = None, alert_at: datetime, what: str = "the position") -> ClosedFirst | None:
    """The close the exchange reported, when it is the latest fill on the position (other than
    `exclude`): nothing of ours traded it since. `side` is the closing side (SELL for a long); None
    takes any reported close."""
    fills = Order.objects.filter(symbol=symbol, executed_qty__gt=0)
    if position_side is not None:
        fills = fills.filter(position_side=position_side)
    if exclude is not None:
        fills = fills.exclude(pk=exclude)
    latest = fills.select_related("protective").order_by("-created_at", "-id").first()
    if latest is None or latest.source == Order.Source.SIGNAL:
        return None
    closes = latest.side == side if side is not None else latest.purpose == "close"
    return _from_reported(latest, alert_at, what) if closes else None


def closed_first(order: Order, *, alert_at: datetime, exchange: Exchange, what: str = "the position") -> ClosedFirst:
    """What took the position the reduce-only `order` was sent to reduce (it was refused, or capped).
    Waits a moment for the stream's word when the stream is connected; else, or without it, reads the
    exchange, which also brings our position mirror in line with it."""
    deadline = time.monotonic() + (STREAM_WAIT if stream_connected() else 0)
    while True:
        known = recorded_close(order.symbol, position_side=order.position_side, side=order.side, exclude=order.pk,
                               alert_at=alert_at, what=what)
        if known is not None or time.monotonic() >= deadline:
            break
        time.sleep(STREAM_POLL)
    return known or _read(order, exchange, what)


def stream_connected() -> bool:
    """A user data stream is connected and beating: the exchange's own trades reach us in moments."""
    from trading.live import HEARTBEAT  # trading.live records through trading.recording, which uses this

    return WorkerHeartbeat.objects.filter(name=HEARTBEAT, beat_at__gte=timezone.now() - STREAM_FRESH,
                                          detail__startswith="connected").exists()


def _from_reported(order: Order, alert_at: datetime, what: str) -> ClosedFirst:
    when = _when(order.sent_at or order.created_at, alert_at)
    trade = f"{order.side} {plain(order.executed_qty)} at {plain(order.avg_price or Decimal(0))}"
    if order.source in (Order.Source.STOP_LOSS, Order.Source.TAKE_PROFIT):
        trigger = f" {plain(order.protective.trigger_price)}" if order.protective is not None else ""
        kind = ProtectiveOrder.Kind(order.source).label.lower()
        return ClosedFirst(Cause.OURS, f"the {kind}{trigger} (order {order.exchange_order_id}) closed {what} {when}")
    if order.source in BY_THE_EXCHANGE:
        said = BY_THE_EXCHANGE[Order.Source(order.source)].format(what=what)
        return ClosedFirst(Cause.EXCHANGE, f"{said} (order {order.exchange_order_id}: {trade}) {when}")
    return ClosedFirst(Cause.OUTSIDE, f"a trade placed outside this system (by hand: order {order.exchange_order_id}, "
                                      f"{trade}) closed {what} {when}")


def _read(order: Order, exchange: Exchange, what: str) -> ClosedFirst:
    """Nothing reported: ask the exchange. Our protective order that no longer rests there closed it;
    none gone, something outside this system did."""
    read_started = timezone.now()
    try:
        resting = {state.client_id for state in exchange.open_protective(order.symbol)}
        positions_reconcile(exchange, read_started)
    except ExchangeError as error:
        return ClosedFirst(Cause.OUTSIDE, f"{what} was already closed at the exchange, which could not be read to "
                                          f"tell by what ({error.reason})", told=False)
    ours = ProtectiveOrder.objects.filter(symbol=order.symbol, position_side=order.position_side, side=order.side)
    # Triggered by the stream's word (its fill not told yet) since we last traded the position.
    since = (Order.objects.filter(symbol=order.symbol, position_side=order.position_side, executed_qty__gt=0)
             .exclude(pk=order.pk).order_by("-created_at").values_list("created_at", flat=True).first())
    triggered = ours.filter(status=ProtectiveOrder.Status.TRIGGERED, updated_at__gte=since or order.created_at).first()
    gone = list(ours.filter(status__in=LIVE_PROTECTION).exclude(client_id__in=resting).order_by("kind"))
    if triggered is None and len(gone) == 1:
        triggered = gone.pop()
        ProtectiveOrder.objects.filter(pk=triggered.pk, status__in=LIVE_PROTECTION).update(
            status=ProtectiveOrder.Status.TRIGGERED, updated_at=timezone.now())
    if triggered is not None:
        return ClosedFirst(Cause.OURS, f"the {_named(triggered)} closed {what}: it triggered at the exchange, which "
                                       "has not reported its fill yet")
    if gone:
        ProtectiveOrder.objects.filter(pk__in=[p.pk for p in gone]).update(status=ProtectiveOrder.Status.GONE,
                                                                            updated_at=timezone.now())
        names = " and ".join(_named(p) for p in gone)
        return ClosedFirst(Cause.OUTSIDE, f"{what} was closed at the exchange and our {names} are gone from there: "
                                          "one of them, or a trade outside this system, closed it; our records now "
                                          "match the exchange", told=False)
    return ClosedFirst(Cause.OUTSIDE, f"{what} was closed outside this system: no order of ours closed it and the "
                                      "exchange reported no trade; our records now match the exchange", told=False)


def _named(protective: ProtectiveOrder) -> str:
    return f"{protective.get_kind_display().lower()} {plain(protective.trigger_price)} ({protective.client_id})"


def _when(moment: datetime, alert_at: datetime) -> str:
    """"at 12:00:00.123 UTC, 30 ms before this alert" (the date too when not the alert's day)."""
    utc = moment.astimezone(UTC)
    shown = utc.strftime("%H:%M:%S.%f")[:-3]
    if utc.date() != alert_at.astimezone(UTC).date():
        shown = f"{utc:%Y-%m-%d} {shown}"
    seconds = (alert_at - moment).total_seconds()
    relation = "before this alert" if seconds >= 0 else "after this alert arrived, before our order reached the exchange"
    return f"at {shown} UTC, {gap(abs(seconds))} {relation}"


def gap(seconds: float) -> str:
    """A time span as people say it: 30 ms, 4.2 s, 12 min, 5 h, 3 days."""
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 120 * 60:
        return f"{int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"

