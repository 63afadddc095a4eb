"""Risk limits on opening orders: the kill switch, a strategy's daily loss limit, its maximum of
open positions, and its protections (cooldown after a loss, trades per day, loss streak, drawdown,
trading hours: docs/PROTECTION.md). Closing orders are never limited: a halt must still let a
trader get flat.

`opening_limits` says, before planning, why opens (or new positions) are refused; the pure engine
then still plans the closes and says which limit stopped the rest. `strategy_lock` says, reading
only, what locks a strategy's opens now: the worker, the dashboard and the strategy page ask it.
Each protection costs a query only when it is set.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Max, Q, QuerySet, Sum, Window
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics.models import AccountSnapshot
from notifications.events import notify
from notifications.models import Notification
from preferences.models import StrategyPreference
from preferences.trading_hours import TradingHoursError, trading_hours_parse
from trading.engine import plain
from trading.exchange import get_exchange
from trading.halt import opening_refusal
from trading.models import Order, Position

ZERO = Decimal(0)
HUNDRED = Decimal(100)
MONEY = DecimalField(max_digits=28, decimal_places=10)
NET = ExpressionWrapper(F("realized_pnl") - F("commission"), output_field=MONEY)
CLOSING = ("close", "reverse")
LOST = Q(realized_pnl__lt=F("commission"))  # net of fees below 0
OPENING = ("open", "add")


@dataclass(frozen=True)
class OpeningLimits:
    opens: str = ""  # why no opening leg (open or add) may go out; "" when they may
    new_positions: str = ""  # why no *new* position may be opened (adds to a held one may)
    adds: str = ""  # why no add to the held position of the entry's side may go out (max_adds)


@dataclass(frozen=True)
class Lock:
    """Why a strategy may open nothing now."""

    protection: str  # its name in plain words
    reason: str
    until: datetime | None  # None: until an operator lifts it
    # When it engaged, for a lock computed afresh at each signal: the channels hear of it once, at
    # the first refusal. None for a lock stored on the strategy (told when stored) or trading hours
    # (a schedule, no news).
    engaged_at: datetime | None = None


def opening_limits(preference: StrategyPreference, symbol: str, side: str | None = None) -> OpeningLimits:
    """`side` (long or short) is the entry's: an add to that side is checked against max_adds."""
    halted = opening_refusal()  # the global kill switch, or the traded (`default`) account's
    if halted:
        return OpeningLimits(opens=halted)
    now = timezone.now()
    lock = strategy_lock(preference, now=now) or _daily_loss_reached(preference, now) or _drawdown_reached(preference, now)
    if lock is not None:
        _tell_once(preference, lock)
        return OpeningLimits(opens=lock.reason)
    return OpeningLimits(new_positions=_positions_refusal(preference, symbol), adds=_adds_refusal(preference, symbol, side))


def strategy_lock(preference: StrategyPreference, *, now: datetime) -> Lock | None:
    """The first lock on the strategy's opens now, reading only: a daily loss or drawdown counts once
    a refused open has measured and stored it."""
    checks: tuple[Callable[[StrategyPreference, datetime], Lock | None], ...] = (
        _halted, _drawdown_locked, _outside_hours, _cooling_down, _trades_today, _loss_streak,
    )
    for check in checks:
        lock = check(preference, now)
        if lock is not None:
            return lock
    return None


def _halted(preference: StrategyPreference, now: datetime) -> Lock | None:
    if preference.halted_until is None or now >= preference.halted_until:
        return None
    return Lock("daily loss limit", f"strategy {preference.name!r} is halted until "
                f"{preference.halted_until:%Y-%m-%d %H:%M} UTC: its daily loss limit was reached (clear 'halted "
                f"until' to lift it)", preference.halted_until)


def _drawdown_locked(preference: StrategyPreference, now: datetime) -> Lock | None:
    if preference.drawdown_locked_at is None:
        return None
    return Lock("max drawdown", f"max drawdown: opens locked since {preference.drawdown_locked_at:%Y-%m-%d %H:%M} "
                "UTC, until an operator clears the drawdown lock (on the strategy page, in the admin, or POST "
                "/preferences/drawdown_lock with null)", None)


def _outside_hours(preference: StrategyPreference, now: datetime) -> Lock | None:
    if not preference.trading_hours:
        return None
    try:
        hours = trading_hours_parse(preference.trading_hours)
    except TradingHoursError as error:  # stored around the form (a shell, an old row): refuse rather than guess
        return Lock("trading hours", f"trading hours cannot be read, so no open is allowed: {error}", None)
    if hours.allows(now):
        return None
    again = hours.next_open(now)
    return Lock("trading hours", f"trading hours: opens are allowed only {preference.trading_hours} (UTC); next "
                f"from {again:%a %Y-%m-%d %H:%M} UTC", again)


def _cooling_down(preference: StrategyPreference, now: datetime) -> Lock | None:
    if preference.cooldown_after_loss is None:
        return None
    length = timedelta(minutes=preference.cooldown_after_loss)
    last = (
        closing_trades(preference.name).filter(LOST, acknowledged_at__gt=now - length)
        .order_by("-acknowledged_at", "-id").values_list("acknowledged_at", "realized_pnl", "commission").first()
    )
    if last is None:
        return None
    closed_at, realized, commission = last
    assert closed_at is not None  # filtered on
    until = closed_at + length
    return Lock("cooldown after a loss", f"cooldown after a loss: the trade closed at {closed_at:%H:%M:%S} UTC lost "
                f"{plain(commission - realized)} USDT; opens allowed again at {_moment(until, now)} UTC", until,
                engaged_at=closed_at)


def _trades_today(preference: StrategyPreference, now: datetime) -> Lock | None:
    limit = preference.max_trades_per_day
    if limit is None:
        return None
    start = _day_start(now)
    # An opening trade: an entry that filled, opening a position or adding to one (a reversal's open included).
    nth = list(
        Order.objects.filter(execution__strategy=preference.name, purpose__in=OPENING, executed_qty__gt=0,
                             acknowledged_at__gte=start)
        .order_by("acknowledged_at", "id").values_list("acknowledged_at", flat=True)[limit - 1:limit]
    )
    if not nth:
        return None
    until = start + timedelta(days=1)
    return Lock("max trades per day", f"max trades per day: the strategy made {limit} opening trades since 00:00 UTC, "
                f"its limit; opens allowed again at {until:%Y-%m-%d %H:%M} UTC", until, engaged_at=nth[0])


def _loss_streak(preference: StrategyPreference, now: datetime) -> Lock | None:
    limit = preference.loss_streak_limit
    if limit is None:
        return None
    trades = closing_trades(preference.name)
    last_win = trades.exclude(LOST).order_by("-acknowledged_at", "-id").values_list("acknowledged_at", flat=True).first()
    losses = trades.filter(LOST) if last_win is None else trades.filter(LOST, acknowledged_at__gt=last_win)
    closed = losses.order_by("acknowledged_at", "id").values_list("acknowledged_at", flat=True)
    engaged_at, until = streak_lock([at for at in closed if at is not None], limit)
    if engaged_at is None or until is None or now >= until:
        return None
    return Lock("loss streak", f"loss streak: {limit} losing trades in a row, the last closed at {engaged_at:%H:%M:%S} "
                f"UTC; opens locked until {until:%Y-%m-%d %H:%M} UTC", until, engaged_at=engaged_at)


def streak_lock(losses: list[datetime], limit: int) -> tuple[datetime | None, datetime | None]:
    """(when the last lock engaged, when it ends) over a run of losses in a row, oldest first. Every
    `limit` losses lock opens until the next UTC day; losses closed while locked (closes still go
    out) do not count, so after a lock it takes `limit` new losses to lock again."""
    engaged_at = until = None
    counted = 0
    for closed_at in losses:
        if until is not None and closed_at < until:
            continue
        counted += 1
        if counted == limit:
            engaged_at, until, counted = closed_at, _day_start(closed_at) + timedelta(days=1), 0
    return engaged_at, until


def _daily_loss_reached(preference: StrategyPreference, now: datetime) -> Lock | None:
    if preference.max_daily_loss is None:
        return None
    net = daily_net_pnl(preference.name, since=_day_start(now))
    if net > -preference.max_daily_loss:
        return None
    until = _day_start(now) + timedelta(days=1)
    StrategyPreference.objects.filter(pk=preference.pk).update(halted_until=until)
    why = (f"daily loss limit reached: net realized P&L since 00:00 UTC is {plain(net)} USDT, the limit is "
           f"-{plain(preference.max_daily_loss)} USDT; opening orders halted until {until:%Y-%m-%d %H:%M} UTC")
    notify("limit", f"Strategy {preference.name}: {why}", strategy=preference)
    return Lock("daily loss limit", why, until)


def _drawdown_reached(preference: StrategyPreference, now: datetime) -> Lock | None:
    """Measures the drawdown and, at the limit, stores the lock (told once: the store that set it tells)."""
    if preference.max_drawdown_pct is None or preference.drawdown_locked_at is not None:
        return None
    drawdown = strategy_drawdown(preference.name, since=preference.drawdown_since)
    if drawdown <= 0:
        return None
    equity = _equity_now()
    if equity is None:
        return Lock("max drawdown", f"max drawdown cannot be checked: the strategy is {plain(drawdown)} USDT below its "
                    "peak, and the account's equity is not known yet (no account snapshot)", None)
    pct = drawdown_pct(drawdown, equity)
    if pct < preference.max_drawdown_pct:
        return None
    why = (f"max drawdown reached: the strategy's realized P&L is {plain(drawdown)} USDT below its peak, "
           f"{plain(pct.quantize(Decimal('0.01')))} % of the equity before it ({plain(equity + drawdown)} USDT); the "
           f"limit is {plain(preference.max_drawdown_pct)} %. Opens are locked until an operator clears the drawdown lock")
    if StrategyPreference.objects.filter(pk=preference.pk, drawdown_locked_at__isnull=True).update(drawdown_locked_at=now):
        preference.drawdown_locked_at = now
        notify("limit", f"Strategy {preference.name}: {why}", strategy=preference)
    return Lock("max drawdown", why, None)


def drawdown_pct(drawdown: Decimal, equity: Decimal) -> Decimal:
    """The drawdown as a percent of the equity before it: the account's equity now plus what was lost."""
    before = equity + drawdown
    return HUNDRED if before <= 0 else drawdown / before * HUNDRED


def strategy_drawdown(strategy: str, *, since: datetime | None) -> Decimal:
    """How far the strategy's cumulative net realized P&L (since `since`) is below its peak; the
    peak is at least 0, the start."""
    orders = Order.objects.filter(_theirs(strategy), acknowledged_at__isnull=False)
    if since is not None:
        orders = orders.filter(acknowledged_at__gte=since)
    curve = orders.annotate(cumulative=Window(Sum(NET), order_by=[F("acknowledged_at").asc(), F("id").asc()]))
    figures = curve.aggregate(peak=Max("cumulative"), now=Sum(NET))
    peak, current = max(figures["peak"] or ZERO, ZERO), figures["now"] or ZERO
    return Decimal(peak - current)


def _equity_now() -> Decimal | None:
    snapshot = AccountSnapshot.objects.filter(account=get_exchange().account_id).values_list("equity", flat=True).first()
    return None if snapshot is None else Decimal(snapshot)


def _tell_once(preference: StrategyPreference, lock: Lock) -> None:
    """A lock computed afresh at each refused open is told at the first: any later refusal finds the
    notification of this protection made since the lock engaged (its reason starts with its name)."""
    if lock.engaged_at is None:
        return
    told = Notification.objects.filter(event_type="limit", created_at__gte=lock.engaged_at,
                                       text__startswith=f"Strategy {preference.name}: {lock.protection}")
    if not told.exists():
        notify("limit", f"Strategy {preference.name}: {lock.reason}", strategy=preference)


def daily_net_pnl(strategy: str, *, since: datetime) -> Decimal:
    """Realized P&L less commissions of the strategy's orders acknowledged since `since`, its stop-losses
    and take-profits that filled at the exchange included."""
    total = Order.objects.filter(_theirs(strategy), acknowledged_at__gte=since).aggregate(
        net=Coalesce(Sum(NET), ZERO, output_field=MONEY)
    )["net"]
    return Decimal(total)


def closing_trades(strategy: str) -> QuerySet[Order]:
    """The strategy's closing fills, its stop-losses and take-profits included: its trades. One lost
    (LOST) when its realized P&L less commission is below 0."""
    return Order.objects.filter(_theirs(strategy), purpose__in=CLOSING, executed_qty__gt=0, acknowledged_at__isnull=False)


def _theirs(strategy: str) -> Q:
    return Q(execution__strategy=strategy) | Q(protective__execution__strategy=strategy)


def _day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time.min, tzinfo=moment.tzinfo)


def _moment(at: datetime, now: datetime) -> str:
    return f"{at:%H:%M:%S}" if at.date() == now.date() else f"{at:%Y-%m-%d %H:%M:%S}"


def _positions_refusal(preference: StrategyPreference, symbol: str) -> str:
    limit = preference.max_open_positions
    if limit is None:
        return ""
    others = Position.objects.filter(symbol__in=preference.products).exclude(symbol=symbol).exclude(amount=0)
    held = others.values("symbol").distinct().count()
    if held < limit:
        return ""
    return f"max open positions reached: strategy {preference.name!r} holds {held} of its limit of {limit}"


def _adds_refusal(preference: StrategyPreference, symbol: str, side: str | None) -> str:
    """Adds are the strategy's filled `add` orders of this side since its last filled `open` of it (in
    hedge mode the side's own position; in one-way mode a long's are buys, a short's sells). Without
    an open of ours (a position opened by hand) every add of ours to that side counts: the cautious way."""
    limit = preference.max_adds
    if limit is None or side is None:
        return ""
    entries = Order.objects.filter(execution__strategy=preference.name, symbol=symbol, executed_qty__gt=0,
                                   side=Order.Side.BUY if side == "long" else Order.Side.SELL)
    opened = entries.filter(purpose="open").order_by("-id").values_list("id", "acknowledged_at", "created_at").first()
    adds = entries.filter(purpose="add")
    if opened is not None:
        adds = adds.filter(id__gt=opened[0])
    count = adds.count()
    if count < limit:
        return ""
    since = "" if opened is None else f" since the {side} opened at {(opened[1] or opened[2]):%Y-%m-%d %H:%M:%S} UTC"
    return f"max adds reached: {count} add{'' if count == 1 else 's'}{since}, the strategy's limit is {limit}"
