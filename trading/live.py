"""The exchange's own word, live: its user data stream applied to our records as it happens.

`manage.py userstream` runs `stream_run`: one process per account keeps the exchange's stream open
(the adapter reconnects and keeps it alive) and applies each event at once:
- an order's fill, ours or not (a triggered stop-loss or take-profit, a liquidation, auto-
  deleveraging, a trade placed by hand), becomes an Order record and moves the Position mirror;
- a protective order triggered, cancelled or refused at the exchange updates its ProtectiveOrder;
- a funding fee brings the ledger import forward; a position changed without an order (an exchange
  adjustment) is taken as the exchange states it.
- a leverage changed (by us, or by hand in the exchange's app) is remembered for the next order
  (trading/account_setup.py).

Nothing is applied twice: an order's fill moves the Position only by the part not yet folded in
(`Order.applied_qty`, under a row lock), and an exchange-reported order is recorded once (unique per
symbol and exchange order id), so a replayed event, a second stream process or a worker recording the
same order from its REST answer changes nothing. Events missed while the stream was down are
recovered by reconciling positions with the exchange each time the stream (re)opens, and by the
periodic reconciliation.
"""

import logging
import socket
from decimal import Decimal
from threading import Event

from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from analytics.follow import LedgerFollower
from notifications.events import notify
from trading import account_setup, recording
from trading.exchange import (
    AccountChange,
    AccountUpdate,
    Exchange,
    ExchangeError,
    FillCause,
    LeverageUpdate,
    OrderUpdate,
    ProtectiveStatus,
    ProtectiveUpdate,
    StreamAlive,
    StreamConnected,
    StreamDown,
    UserEvent,
)
from trading.models import Order, Position, ProtectiveOrder, WorkerHeartbeat
from trading.upkeep import positions_reconcile

logger = logging.getLogger(__name__)

HEARTBEAT = "userstream"
BEAT_EVERY = 15.0  # seconds between heartbeats while the stream is quiet
SOURCES = {FillCause.LIQUIDATION: Order.Source.LIQUIDATION, FillCause.AUTO_DELEVERAGE: Order.Source.ADL,
           FillCause.SETTLEMENT: Order.Source.SETTLEMENT, FillCause.ORDER: Order.Source.MANUAL}
LIVE_PROTECTION = (ProtectiveOrder.Status.PLACING, ProtectiveOrder.Status.ACTIVE)


def stream_run(exchange: Exchange, stop: Event) -> None:
    """Apply the exchange's events until `stop` is set; returns at once for an exchange without a
    stream. Beats a heartbeat row (/health's `user_stream`) on every change and every BEAT_EVERY."""
    stream = exchange.user_stream()
    if stream is None:
        logger.info("user stream: the %s exchange has none; nothing to do", exchange.name)
        return
    last_beat, state = 0.0, "opening"
    ledger = LedgerFollower()  # each fill brings the ledger import forward (analytics/follow.py)
    ledger.start()
    try:
        for event in stream.events(stop):
            close_old_connections()
            try:
                what = event_apply(event, exchange)
            except Exception:  # one bad event must not stop the stream; reconciliation repairs the rest
                logger.exception("user stream: applying %s failed", type(event).__name__)
                what = ""
            if what:
                logger.info("user stream: %s", what)
            if isinstance(event, OrderUpdate) and event.last_qty > 0:  # a trade, ours or not, replayed or not
                ledger.fill_seen(event.symbol)
            if isinstance(event, StreamConnected):
                state = f"connected since {event.time.isoformat(timespec='seconds')}"
            elif isinstance(event, StreamDown):
                state = f"down: {event.reason}"
            now = timezone.now().timestamp()
            if isinstance(event, StreamConnected | StreamDown) or now - last_beat > BEAT_EVERY:
                _beat(state)
                last_beat = now
    finally:
        ledger.close()


def event_apply(event: UserEvent, exchange: Exchange) -> str:
    """Apply one event; what it changed, in a few words ("" when nothing)."""
    if isinstance(event, OrderUpdate):
        return order_update_apply(event)
    if isinstance(event, ProtectiveUpdate):
        return protective_update_apply(event)
    if isinstance(event, AccountUpdate):
        return account_update_apply(event)
    if isinstance(event, LeverageUpdate):
        return account_setup.leverage_noticed(exchange.account_id, event)
    if isinstance(event, StreamAlive):
        return ""
    if isinstance(event, StreamConnected):
        positions_reconcile(exchange, timezone.now())
        said = "connected; positions reconciled with the exchange (events may have been missed before)"
        try:  # a leverage changed while nobody listened, or a margin type (never pushed): read them again
            account_setup.settings_read(exchange)
        except ExchangeError as error:
            return f"{said}; leverage and margin types could not be read ({error.reason}): each opening order reads them"
        return f"{said}; leverage and margin types read again"
    return f"down: {event.reason}; reopening"


# --- orders ------------------------------------------------------------------------------------------
def order_update_apply(update: OrderUpdate) -> str:
    """A fill (or part of one) of any order on the account into Order and Position, once."""
    if update.executed_qty <= 0:
        return ""  # placed, or cancelled unfilled: the worker's own answers tell this for our orders
    with transaction.atomic():  # the record of a reported order and its fill, together
        order = _ours(update) or _reported(update)
        before = order.applied_qty
        order = recording.order_record(order, update.as_result(), commission_part=update.commission,
                                       realized_part=update.realized_pnl)
    if order.applied_qty == before:
        return ""  # already applied (a replay, or the worker's answer came first)
    if order.source != Order.Source.SIGNAL:
        _after_exchange_trade(order)
    elif order.execution_id is not None and order.status == Order.Status.FILLED:
        recording.execution_note_late(order)  # if its execution had already given up on it
    return f"{order.get_source_display().lower()}: {order.side} {order.applied_qty - before:f} {order.symbol} ({order.status})"


def _ours(update: OrderUpdate) -> Order | None:
    return (
        Order.objects.filter(client_order_id=update.client_order_id, symbol=update.symbol)
        .filter(Q(exchange_order_id="") | Q(exchange_order_id=update.exchange_order_id))
        .first()
    )


def _reported(update: OrderUpdate) -> Order:
    """The record of an order we did not send, made the first time the exchange reports it."""
    existing = Order.objects.filter(symbol=update.symbol, exchange_order_id=update.exchange_order_id).first()
    if existing is not None:
        return existing
    protective = ProtectiveOrder.objects.filter(
        Q(symbol=update.symbol, order_id=update.exchange_order_id) | Q(client_id=update.client_order_id)
    ).first()
    source = Order.Source(protective.kind) if protective is not None else SOURCES[update.cause]
    client_id = update.client_order_id[:36]
    if not client_id or Order.objects.filter(client_order_id=client_id).exists():
        client_id = f"x-{update.symbol}-{update.exchange_order_id}"[:36]
    try:
        with transaction.atomic():
            return Order.objects.create(
                execution=None, source=source, protective=protective, purpose=_purpose(update),
                client_order_id=client_id, exchange_order_id=update.exchange_order_id, symbol=update.symbol,
                side=update.side, order_type=update.order_type[:20], position_side=update.position_side,
                quantity=update.quantity or update.executed_qty, reduce_only=update.reduce_only,
                status=Order.Status.NEW, sent_at=update.time,
            )
    except IntegrityError:  # another stream process recorded it first
        return Order.objects.get(symbol=update.symbol, exchange_order_id=update.exchange_order_id)


def _purpose(update: OrderUpdate) -> str:
    """What the order did to the position as we hold it: open, add, close or reverse."""
    position = Position.objects.filter(symbol=update.symbol, position_side=update.position_side).first()
    held = position.amount if position is not None else Decimal(0)
    buying = update.side == Order.Side.BUY
    if held == 0:
        return "open"
    if (held > 0) == buying:
        return "add"
    return "reverse" if update.quantity > abs(held) and not update.reduce_only else "close"


def _after_exchange_trade(order: Order) -> None:
    """The exchange changed a position by itself: say so, and settle its protective orders."""
    from trading.queue import enqueue_task

    strategy = order.protective.execution.signal.preference if order.protective_id and order.protective else None
    # A liquidation or auto-deleveraging is an alarm, not news of a fill.
    event = "protection" if order.source in (Order.Source.LIQUIDATION, Order.Source.ADL) else "fill"
    notify(event, f"{order.get_source_display()}: {order.side} {order.executed_qty.normalize():f} {order.symbol} "
           f"at {(order.avg_price or Decimal(0)).normalize():f}; realized P&L {order.realized_pnl.normalize():f} USDT",
           strategy=strategy)
    if order.status == Order.Status.FILLED:
        enqueue_task("trading.tasks.settle_protection", order.symbol)


# --- protective orders --------------------------------------------------------------------------------
def protective_update_apply(update: ProtectiveUpdate) -> str:
    protective = ProtectiveOrder.objects.filter(client_id=update.client_id).first()
    if protective is None:
        return ""  # not one of ours
    if update.status in (ProtectiveStatus.TRIGGERED, ProtectiveStatus.FINISHED):
        changed = ProtectiveOrder.objects.filter(pk=protective.pk).exclude(
            status=ProtectiveOrder.Status.TRIGGERED, order_id=update.order_id
        ).update(status=ProtectiveOrder.Status.TRIGGERED, order_id=update.order_id or protective.order_id,
                 updated_at=timezone.now())
        if update.order_id:  # the fill may have been reported first
            Order.objects.filter(symbol=update.symbol, exchange_order_id=update.order_id, protective=None).update(
                protective=protective, source=protective.kind, updated_at=timezone.now())
        return f"{protective} triggered" if changed else ""
    if update.status in (ProtectiveStatus.CANCELLED, ProtectiveStatus.EXPIRED, ProtectiveStatus.REJECTED):
        gone = ProtectiveOrder.objects.filter(pk=protective.pk, status__in=LIVE_PROTECTION)
        if update.status == ProtectiveStatus.REJECTED:
            if gone.update(status=ProtectiveOrder.Status.REJECTED, error_message="refused by the exchange when triggered",
                           updated_at=timezone.now()):
                preference = protective.execution.signal.preference
                notify("protection", f"{protective} was refused by the exchange when it triggered: {protective.symbol} "
                       "may still be open without it", strategy=preference)
                return f"{protective} refused at the exchange"
            return ""
        if protective.cancel_requested_at is not None:  # ours: recorded before the request was sent
            cancelled = gone.update(status=ProtectiveOrder.Status.CANCELLED, updated_at=timezone.now())
            return f"{protective} cancelled by us" if cancelled else ""
        # Cancelled at the exchange (by hand, or by the exchange itself), not by us: it is gone.
        return f"{protective} gone" if gone.update(status=ProtectiveOrder.Status.GONE, updated_at=timezone.now()) else ""
    return ""


# --- balances and positions -------------------------------------------------------------------------
def account_update_apply(update: AccountUpdate) -> str:
    """Funding brings the ledger import forward. A position changed by a trade is told fill by fill
    by its OrderUpdate; one changed without any order (an exchange adjustment) is taken as stated."""
    from trading.queue import enqueue_task

    said = []
    if update.change == AccountChange.FUNDING:
        enqueue_task("analytics.tasks.import_ledger")
        said.append("funding fee: ledger import queued")
    if update.change not in (AccountChange.TRADE, AccountChange.FUNDING):
        for info in update.positions:
            changed = Position.objects.filter(symbol=info.symbol, position_side=info.position_side).exclude(
                amount=info.amount).update(amount=info.amount, entry_price=info.entry_price,
                                           unrealized_pnl=info.unrealized_pnl, updated_at=timezone.now())
            if changed:
                said.append(f"{info.symbol} set to {info.amount.normalize():f} as the exchange states ({update.change})")
    return "; ".join(said)


def _beat(detail: str) -> None:
    WorkerHeartbeat.objects.update_or_create(
        name=HEARTBEAT, defaults={"beat_at": timezone.now(), "host": socket.gethostname(), "detail": detail[:255]},
    )
