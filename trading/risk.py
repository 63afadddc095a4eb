"""Risk limits on opening orders: the kill switch, a strategy's daily loss limit, its maximum of
open positions. Closing orders are never limited: a halt must still let a trader get flat.

`opening_limits` says, before planning, why opens (or new positions) are refused; the pure engine
then still plans the closes and says which limit stopped the rest.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import DecimalField, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from notifications.events import notify
from preferences.models import StrategyPreference
from trading.engine import plain
from trading.models import Order, Position, TradingHalt

ZERO = Decimal(0)


@dataclass(frozen=True)
class OpeningLimits:
    opens: str = ""  # why no opening leg (open or add) may go out; "" when they may
    new_positions: str = ""  # why no *new* position may be opened (adds to a held one may)


def opening_limits(preference: StrategyPreference, symbol: str) -> OpeningLimits:
    halt = TradingHalt.current()
    if halt.halted:
        why = f": {halt.reason}" if halt.reason else ""
        return OpeningLimits(opens=f"trading is halted by the kill switch{why}")
    daily = _daily_loss_refusal(preference)
    if daily:
        return OpeningLimits(opens=daily)
    return OpeningLimits(new_positions=_positions_refusal(preference, symbol))


def _daily_loss_refusal(preference: StrategyPreference) -> str:
    now = timezone.now()
    if preference.halted_until is not None and now < preference.halted_until:
        return (f"strategy {preference.name!r} is halted until {preference.halted_until:%Y-%m-%d %H:%M} UTC: "
                f"its daily loss limit was reached (clear 'halted until' to lift it)")
    if preference.max_daily_loss is None:
        return ""
    net = daily_net_pnl(preference.name, since=_day_start(now))
    if net > -preference.max_daily_loss:
        return ""
    until = _day_start(now) + timedelta(days=1)
    StrategyPreference.objects.filter(pk=preference.pk).update(halted_until=until)
    why = (f"daily loss limit reached: net realized P&L since 00:00 UTC is {plain(net)} USDT, the limit is "
           f"-{plain(preference.max_daily_loss)} USDT; opening orders halted until {until:%Y-%m-%d %H:%M} UTC")
    notify("limit", f"Strategy {preference.name}: {why}", strategy=preference)
    return why


def daily_net_pnl(strategy: str, *, since: datetime) -> Decimal:
    """Realized P&L less commissions of the strategy's orders acknowledged since `since`, its stop-losses
    and take-profits that filled at the exchange included."""
    money = DecimalField(max_digits=28, decimal_places=10)
    theirs = Q(execution__strategy=strategy) | Q(protective__execution__strategy=strategy)
    total = Order.objects.filter(theirs, acknowledged_at__gte=since).aggregate(
        net=Coalesce(Sum(F("realized_pnl") - F("commission"), output_field=money), ZERO, output_field=money)
    )["net"]
    return Decimal(total)


def _day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time.min, tzinfo=moment.tzinfo)


def _positions_refusal(preference: StrategyPreference, symbol: str) -> str:
    limit = preference.max_open_positions
    if limit is None:
        return ""
    others = Position.objects.filter(symbol__in=preference.products).exclude(symbol=symbol).exclude(amount=0)
    held = others.values("symbol").distinct().count()
    if held < limit:
        return ""
    return f"max open positions reached: strategy {preference.name!r} holds {held} of its limit of {limit}"
