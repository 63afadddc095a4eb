"""The account's setup at the exchange, read from the exchange rather than assumed.

Leverage and margin type are per symbol, and anyone can change them in Binance's app at any time.
What this account has is remembered in SymbolSetting (one row per exchange account and symbol), and
read from the exchange:
- when a worker process starts (`settings_read_at_start`) and whenever the user data stream
  (re)opens (`settings_read`): what changed while nobody listened;
- from the stream, whenever a leverage changes (`leverage_noticed`; margin type changes are not
  pushed, so a row so updated keeps its age);
- before an opening order, when what is remembered is older than EXCHANGE_SETTINGS_MAX_AGE
  (`settings_apply`).
A value that differs from the strategy's is set before the order, and the execution's decision says
so in plain words. `SymbolSetting.updated_at` is when both values were last read, or set by us.

`setup_check` is what `manage.py exchange_check` and /health's staff detail show.
"""

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from preferences.models import StrategyPreference
from trading.exchange import Exchange, LeverageUpdate, PermanentError, SetupLine, SymbolSettings, get_exchange
from trading.models import Position, SymbolSetting

logger = logging.getLogger(__name__)


# --- before an opening order ---------------------------------------------------------------------
@dataclass
class Applied:
    """What setting up a symbol for an order did: what it changed, in plain words, or why it could not."""

    notes: list[str] = field(default_factory=list)
    refusal: tuple[PermanentError, str] | None = None


def settings_apply(*, exchange: Exchange, symbol: str, wanted: SymbolSettings,
                   retrying: Callable[..., Any]) -> Applied:
    """Margin type, then leverage, as the strategy wants them on `symbol`, each sent only when what the
    exchange has (remembered, or read again when that is stale) differs. A refusal stops there."""
    known, _ = SymbolSetting.objects.get_or_create(account=exchange.account_id, symbol=symbol)
    read = is_stale(known, now=timezone.now(), max_age=settings.EXCHANGE_SETTINGS_MAX_AGE) and _read_into(
        known, exchange, retrying)
    applied, changed = Applied(), []
    try:
        for label, name, value, change in (("margin type", "margin_type", wanted.margin_type, exchange.set_margin_type),
                                           ("leverage", "leverage", wanted.leverage, exchange.set_leverage)):
            was = getattr(known, name)
            if was == value:
                continue
            try:
                retrying(change, symbol, value)
            except PermanentError as error:
                applied.refusal = error, f"not sent: {label} {value} could not be set on {symbol}: {error.reason}"
                return applied
            setattr(known, name, value)
            changed.append(name)
            before = f" at the exchange was {was}," if was not in (None, "") else ""
            applied.notes.append(f"{label}{before} set to {value} before the order")
        return applied
    finally:
        if read:
            known.save()  # read now: both values are fresh
        elif changed:
            known.save(update_fields=changed)  # set, but the other value is as old as it was


def is_stale(known: SymbolSetting, *, now: datetime, max_age: int) -> bool:
    """Not both known, or known for longer than `max_age` seconds: read them again first."""
    return known.leverage is None or not known.margin_type or now - known.updated_at > timedelta(seconds=max_age)


def _read_into(known: SymbolSetting, exchange: Exchange, retrying: Callable[..., Any]) -> bool:
    try:
        actual = retrying(exchange.get_symbol_settings, [known.symbol]).get(known.symbol)
    except PermanentError as error:  # the order need not wait on it: what is remembered is sent as before
        logger.warning("%s: leverage and margin type could not be read, going by what was last known: %s",
                       known.symbol, error.reason)
        return False
    if actual is None:
        return False
    known.leverage, known.margin_type = actual.leverage, actual.margin_type
    return True


# --- reads outside an order ----------------------------------------------------------------------
def settings_read(exchange: Exchange) -> list[str]:
    """Read leverage and margin type of every symbol an enabled strategy trades or a position holds,
    and remember them; what differs from a strategy's wish, in plain words (set before its next order)."""
    symbols = set(enabled_symbols()) | set(Position.objects.exclude(amount=0).values_list("symbol", flat=True))
    started = timezone.now()
    actual = exchange.get_symbol_settings(symbols)
    for found in actual.values():
        _remember(exchange.account_id, found, read_started=started)
    differences = []
    for strategy in StrategyPreference.objects.filter(enabled=True).order_by("name"):
        for symbol in strategy.products:
            if symbol not in actual:
                continue
            for what, have, want in (("leverage", actual[symbol].leverage, strategy.leverage),
                                     ("margin type", actual[symbol].margin_type, strategy.margin_type)):
                if have != want:
                    differences.append(f"{symbol}: {what} at the exchange is {have}, {strategy.name} wants {want}: "
                                       "set before its next opening order")
    return differences


def _remember(account: str, found: SymbolSettings, *, read_started: datetime) -> None:
    """Keep what was read, unless the row changed since the read began (an order's own setting is newer)."""
    values = {"leverage": found.leverage, "margin_type": found.margin_type}
    rows = SymbolSetting.objects.filter(account=account, symbol=found.symbol)
    with transaction.atomic():
        kept = rows.filter(updated_at__lt=read_started).update(**values, updated_at=timezone.now())
        if not kept:
            kept = rows.get_or_create(account=account, symbol=found.symbol, defaults=values)[1]
        if kept:
            Position.objects.filter(symbol=found.symbol).update(**values)


def settings_read_at_start(**_: object) -> None:
    """django-q2's post_spawn receiver: each worker process reads them once as it starts, in the
    background (a slow exchange must not hold the worker; orders read what is stale themselves)."""
    threading.Thread(target=_read_at_start, name="exchange-settings", daemon=True).start()


def _read_at_start() -> None:
    try:
        for difference in settings_read(get_exchange()):
            logger.warning("account settings: %s", difference)
    except Exception:  # the exchange or the database is away: the first order reads them instead
        logger.warning("account settings: could not be read at start; each opening order reads them", exc_info=True)
    finally:
        connection.close()


def leverage_noticed(account: str, update: LeverageUpdate) -> str:
    """The stream says a symbol's leverage changed (by us, or by hand): remember it; what it changed."""
    rows = SymbolSetting.objects.filter(account=account, symbol=update.symbol)
    was = rows.values_list("leverage", flat=True).first()
    if was == update.leverage:
        return ""
    with transaction.atomic():
        # update(), not save(): updated_at is when the margin type was last known too, and it was not pushed.
        if not rows.update(leverage=update.leverage):
            rows.get_or_create(account=account, symbol=update.symbol, defaults={"leverage": update.leverage})
        Position.objects.filter(symbol=update.symbol).update(leverage=update.leverage)
    return f"{update.symbol}: leverage at the exchange is now {update.leverage} (was {was if was else 'unknown'})"


# --- is the account set up to trade -------------------------------------------------------------
def enabled_symbols() -> list[str]:
    """Every symbol an enabled strategy trades."""
    products = StrategyPreference.objects.filter(enabled=True).values_list("products", flat=True)
    return sorted({symbol for symbols in products for symbol in symbols or []})


def setup_check(exchange: Exchange, symbols: Collection[str] | None = None) -> list[SetupLine]:
    """The account's setup, line by line (manage.py exchange_check, /health's staff detail)."""
    return exchange.check_setup(enabled_symbols() if symbols is None else symbols)
