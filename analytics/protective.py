"""Protective orders as a trader reads them: on an execution's page every one it placed, in the order
they protect (the stop, the take-profit ladder from its nearest level, the trailing stop), and on the
dashboard each open position's live ones in a line (trading/protection.py places and cancels them)."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from trading.models import Execution, Position, ProtectiveOrder
from trading.protection import LIVE

Kind, Status = ProtectiveOrder.Kind, ProtectiveOrder.Status
KIND_ORDER = {Kind.STOP_LOSS: 0, Kind.TAKE_PROFIT: 1, Kind.TRAILING_STOP: 2}
SHORT = {Kind.STOP_LOSS: "SL", Kind.TAKE_PROFIT: "TP", Kind.TRAILING_STOP: "Trail"}
# The badge's words: the model's label for `triggered` says "closed the position", which a ladder
# level that closed its share did not.
STATUS_WORDS = {Status.TRIGGERED: "Triggered", Status.GONE: "No longer at the exchange"}


def protective_key(order: ProtectiveOrder) -> tuple[str, int, int, datetime, int]:
    """Side by side (hedge mode); the stop first (a stop moved to breakeven after the one it replaced),
    then the take-profits by ladder level, then the trailing stop."""
    level = order.level if order.kind == Kind.TAKE_PROFIT else 0
    return (order.position_side, KIND_ORDER.get(Kind(order.kind), len(KIND_ORDER)), level, order.created_at, order.pk or 0)


def protective_label(order: ProtectiveOrder, levels: int = 0) -> str:
    """"Take-profit 2 of 3", "Stop-loss moved to breakeven after take-profit 1 filled", "Trailing stop"."""
    if order.kind == Kind.TAKE_PROFIT and order.level:
        return f"Take-profit {order.level}" + (f" of {levels}" if levels >= order.level else "")
    if order.kind == Kind.STOP_LOSS and order.level:
        return f"Stop-loss moved to breakeven after take-profit {order.level} filled"
    return order.get_kind_display()


@dataclass(frozen=True)
class ProtectiveRow:
    order: ProtectiveOrder
    label: str
    status: str  # the badge's words
    note: str  # what happened to it besides its status, or ""


def execution_protection(execution: Execution) -> list[ProtectiveRow]:
    """The execution's protective orders (prefetched), each with its label; a stop cancelled when a
    later one of this execution replaced it (a move to breakeven) says so."""
    orders = sorted(execution.protective_orders.all(), key=protective_key)
    levels: dict[str, int] = defaultdict(int)
    for order in orders:
        if order.kind == Kind.TAKE_PROFIT:
            levels[order.position_side] = max(levels[order.position_side], order.level)
    rows = []
    for n, order in enumerate(orders):
        note = ""
        later_stop = any(other.kind == Kind.STOP_LOSS and other.position_side == order.position_side
                         for other in orders[n + 1:])
        if order.kind == Kind.STOP_LOSS and order.status == Status.CANCELLED and later_stop:
            note = "replaced by the stop below"
        rows.append(ProtectiveRow(order, protective_label(order, levels[order.position_side]),
                                  STATUS_WORDS.get(Status(order.status), order.get_status_display()), note))
    return rows


def protection_asked(execution: Execution) -> bool:
    """Whether the strategy (as the signal's decision read it) or the alert asked for any protection."""
    signal = execution.signal
    preference = signal.preference
    configured = preference is not None and bool(preference.stop_loss or preference.take_profit
                                                  or preference.take_profit_ladder or preference.trailing_stop)
    payload = signal.payload if isinstance(signal.payload, dict) else {}
    return configured or signal.stop_loss is not None or signal.take_profit is not None or "trail" in payload or "tp" in payload


@dataclass(frozen=True)
class LiveProtection:
    order: ProtectiveOrder
    short: str  # "SL", "TP2", "Trail"
    label: str  # in full, for a title
    breakeven: bool  # a stop moved to breakeven


def live_protection(positions: Iterable[Position]) -> None:
    """Gives each position its live protective orders (`position.protection`), in one query for all."""
    positions = list(positions)
    if not positions:
        return
    by_position: dict[tuple[str, str], list[ProtectiveOrder]] = defaultdict(list)
    live = ProtectiveOrder.objects.filter(status__in=LIVE, symbol__in={position.symbol for position in positions})
    for order in sorted(live, key=protective_key):
        by_position[order.symbol, order.position_side].append(order)
    for position in positions:
        position.protection = [  # type: ignore[attr-defined]  # read by the positions table
            LiveProtection(order, _short(order), protective_label(order), order.kind == Kind.STOP_LOSS and order.level > 0)
            for order in by_position[position.symbol, position.position_side]
        ]


def _short(order: ProtectiveOrder) -> str:
    if order.kind == Kind.TAKE_PROFIT and order.level:
        return f"TP{order.level}"
    return SHORT[Kind(order.kind)]
