"""What-if replays of a strategy's recorded alerts, run by the worker (issue #21; docs/REPLAY.md).

`replay_request` checks a request and queues it (an analytics.ReplayRun); `replay_execute`, the task,
loads what the pure simulator (analytics/replay.py) needs, runs it twice, under the settings the
strategy had at the period's start and under those settings with the request's overrides, reads what
really happened from the exchange's ledger, and writes the three side by side into the run, once.

The overrides are {preference type: value} as `POST /preferences/{type}` takes them, checked by the
same code (the type's value schema, then the admin's form): a bad one is refused naming its type.
Only the types the simulation plays are taken (REPLAY_TYPES); risk limits (daily loss, open positions,
cooldowns, trading hours) are not simulated.
"""

import logging
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, Sum
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from analytics import replay
from analytics.klines import klines_import
from analytics.models import AccountSnapshot, Kline, LedgerEntry, ReplayRun
from preferences.api import bound_form, errors_by_type, field_for_type
from preferences.api_values import value_read
from preferences.models import StrategyPreference
from trading import engine
from trading.exchange import Exchange, PermanentError, SymbolRules, get_exchange
from trading.intake import alert_tp_ladder, alert_trail
from trading.models import Order, Signal
from trading.queue import enqueue_task
from trading.stops import Trailing, ladder_from_value

logger = logging.getLogger(__name__)

REPLAY_TASK = "analytics.tasks.replay_run"
MAX_PERIOD = timedelta(days=90)
MAX_SLIPPAGE_BPS = Decimal(1000)
DEFAULT_SLIPPAGE_BPS = Decimal(2)
DIFFERENCES_MAX = 200
DEFAULT_STARTING_EQUITY = Decimal(10000)
BINANCE_TAKER_FEE = Decimal("0.0005")  # Binance's default USDⓈ-M taker fee (VIP 0, no BNB discount)
# The preference types the simulation plays (preferences/api.py's words); the others are refused.
REPLAY_TYPES = ("direction", "leverage", "allocation", "sizing", "risk_pct", "max_position_usdt", "sync_to_alert",
                "stop_loss", "take_profit", "trailing_stop", "breakeven_after", "breakeven_to")
# The signals that reached the engine (the others were filtered, refused or duplicates: never traded).
ACCEPTED = (Signal.Status.DONE, Signal.Status.FAILED, Signal.Status.EXECUTING, Signal.Status.QUEUED)
NO_HISTORY_NOTE = "no price history: stops and ladders trigger only at alert prices"
FUNDING_NOTE = ("funding is left out of both replays: the ledger holds what was paid, not the rate, so it cannot be "
                "applied to other positions; Reality's net includes it")
ZERO = Decimal(0)
HUNDRED = Decimal(100)


# --- the result, typed (JSON only in ReplayRun.result) -------------------------------------------------


@dataclass(frozen=True)
class CurvePoint:
    time: datetime
    equity: Decimal


@dataclass(frozen=True)
class Column:
    """One of the three columns: Reality, Replay under the recorded settings, Replay under the new ones."""

    net_pnl: Decimal
    realized_pnl: Decimal
    fees: Decimal  # paid, ≥ 0
    funding: Decimal  # signed: positive received
    trades: int  # closing fills (closing orders for Reality)
    win_rate: Decimal | None
    profit_factor: Decimal | None
    max_drawdown: Decimal
    max_drawdown_pct: Decimal
    equity_curve: tuple[CurvePoint, ...] = ()


@dataclass(frozen=True)
class AlertOutcome:
    """What one alert came to in one replay: the engine's decision, what it filled, how its trade ended."""

    outcome: str  # trade, nothing, filtered, refused
    reason: str
    size: Decimal  # quantity the alert's own fills traded
    exits: str  # the reasons of the closing fills it led to ("stop-loss, take-profit 1")
    net_pnl: Decimal  # Σ net of those closing fills


@dataclass(frozen=True)
class Difference:
    time: datetime
    symbol: str
    action: str
    recorded: AlertOutcome
    changed: AlertOutcome


@dataclass(frozen=True)
class Outcome:
    reality: Column
    recorded: Column
    changed: Column
    differences: tuple[Difference, ...]
    differences_total: int
    alerts: int
    notes: tuple[str, ...] = field(default=())


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """The outcome as ReplayRun.result stores it: amounts as strings (exact), times ISO 8601."""
    return _jsonable(asdict(outcome))


def _jsonable(value: object) -> Any:  # noqa: ANN401 - JSON
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def outcome_read(data: Mapping[str, Any]) -> Outcome:
    """ReplayRun.result back as the dataclasses."""
    def column(raw: Mapping[str, Any]) -> Column:
        return Column(
            net_pnl=Decimal(raw["net_pnl"]), realized_pnl=Decimal(raw["realized_pnl"]), fees=Decimal(raw["fees"]),
            funding=Decimal(raw["funding"]), trades=int(raw["trades"]), win_rate=_decimal_or_none(raw["win_rate"]),
            profit_factor=_decimal_or_none(raw["profit_factor"]), max_drawdown=Decimal(raw["max_drawdown"]),
            max_drawdown_pct=Decimal(raw["max_drawdown_pct"]),
            equity_curve=tuple(CurvePoint(datetime.fromisoformat(point["time"]), Decimal(point["equity"]))
                               for point in raw["equity_curve"]))

    def alert(raw: Mapping[str, Any]) -> AlertOutcome:
        return AlertOutcome(outcome=raw["outcome"], reason=raw["reason"], size=Decimal(raw["size"]), exits=raw["exits"],
                            net_pnl=Decimal(raw["net_pnl"]))

    return Outcome(
        reality=column(data["reality"]), recorded=column(data["recorded"]), changed=column(data["changed"]),
        differences=tuple(Difference(time=datetime.fromisoformat(row["time"]), symbol=row["symbol"], action=row["action"],
                                     recorded=alert(row["recorded"]), changed=alert(row["changed"]))
                          for row in data["differences"]),
        differences_total=int(data["differences_total"]), alerts=int(data["alerts"]), notes=tuple(data["notes"]))


def _decimal_or_none(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


# --- the request -----------------------------------------------------------------------------------------


def replay_request(strategy: str, start: datetime, end: datetime, overrides: Mapping[str, object],
                   slippage_bps: Decimal, by: AbstractBaseUser | AnonymousUser | None,
                   *, now: datetime | None = None) -> ReplayRun:
    """Check a replay's request and queue it. A rest_framework ValidationError names each bad field
    (`strategy`, `from`, `to`, `slippage_bps`, or the override's preference type)."""
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    preference = StrategyPreference.objects.filter(name=strategy).first()
    if preference is None:
        errors["strategy"] = [f"no strategy named {strategy!r}."]
    errors.update(period_problems(start, end, now=now))
    if not (ZERO <= slippage_bps <= MAX_SLIPPAGE_BPS):
        errors["slippage_bps"] = [f"{slippage_bps} is not from 0 to {MAX_SLIPPAGE_BPS} (basis points)."]
    if preference is not None:
        try:
            settings_with(preference, overrides)
        except ValidationError as error:
            errors.update(_error_dict(error))
    if errors:
        raise ValidationError(errors)
    # Kept as JSON: fractions as strings ("2.5"), which the form reads as it reads the page's fields.
    run = ReplayRun.objects.create(strategy=strategy, start=start, end=end, overrides=_jsonable(dict(overrides)),
                                   slippage_bps=slippage_bps,
                                   created_by=by.get_username() if by is not None and by.is_authenticated else "",
                                   stage="queued: waiting for a worker")
    enqueue_task(REPLAY_TASK, run.pk)
    return run


def period_problems(start: datetime, end: datetime, *, now: datetime) -> dict[str, list[str]]:
    if start.tzinfo is None or end.tzinfo is None:
        return {"from": ["give the time zone (UTC): a naive time is ambiguous."]}
    if end > now:
        return {"to": [f"{end:%Y-%m-%d %H:%M} UTC is in the future (now {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC)."]}
    if start >= end:
        return {"from": [f"the period is empty: it starts ({start:%Y-%m-%d %H:%M}) at or after its end "
                         f"({end:%Y-%m-%d %H:%M})."]}
    if end - start > MAX_PERIOD:
        return {"from": [f"the period is {(end - start) / timedelta(days=1):.1f} days long: at most {MAX_PERIOD.days}."]}
    return {}


def _error_dict(error: ValidationError) -> dict[str, list[str]]:
    detail = error.detail
    if isinstance(detail, dict):
        return {str(key): [str(message) for message in (value if isinstance(value, list) else [value])]
                for key, value in detail.items()}
    return {"preferences": [str(message) for message in (detail if isinstance(detail, list) else [detail])]}


def settings_with(preference: StrategyPreference, overrides: Mapping[str, object], *,
                  stored: bool = False) -> StrategyPreference:
    """The strategy's settings (not saved) with each override applied, each through the preferences
    API's checks: the type's value schema (value_read), then the admin's form. ValidationError naming
    the type. `stored`: overrides read back from a run, checked when it was asked for (their fractions
    are strings now, which the schema would refuse): the form alone."""
    # The given values (a historical one's) on a fresh object, never saved: the caller's is left alone.
    current = StrategyPreference(**{model_field.attname: getattr(preference, model_field.attname, None)
                                    for model_field in StrategyPreference._meta.concrete_fields
                                    if hasattr(preference, model_field.attname)})
    current._state.adding = not current.pk  # the form's unique check leaves the strategy's own row out
    if not isinstance(overrides, Mapping):
        raise ValidationError({"preferences": ["give an object: {preference type: value}."]})
    for kind, raw in overrides.items():
        if kind not in REPLAY_TYPES:
            field_for_type(kind)  # a 400 naming an unknown type
            raise ValidationError({kind: [f"the replay does not simulate {kind!r}; it simulates "
                                          f"{', '.join(REPLAY_TYPES)}."]})
        field_name = field_for_type(kind)
        value = raw if stored else value_read(kind, field_name, raw)
        form = bound_form(current, kind=kind, field=field_name, value=value)
        if not form.is_valid():
            errors = errors_by_type(form, kind=kind, field=field_name)
            raise ValidationError({kind: errors.get(kind) or [f"{name}: {', '.join(messages)}"
                                                             for name, messages in errors.items()]})
        current = form.instance
    return current


def simulation_settings(preference: StrategyPreference, *, slippage_bps: Decimal, taker_fee: Decimal,
                        starting_equity: Decimal, hedge_mode: bool) -> replay.Settings:
    """The simulator's settings from a strategy's, as trading/deciding.py and trading/protection.py read
    them (no risk limits: nothing is refused for a daily loss or an open-positions cap)."""
    return replay.Settings(
        preference=engine.Preference(
            direction=preference.direction, sizing=preference.sizing, allocation_pct=preference.allocation_pct,
            leverage=preference.leverage, risk_pct=preference.risk_pct, stop_loss_pct=preference.stop_loss or None,
            max_position_usdt=preference.max_position_usdt, price_tolerance_pct=preference.price_tolerance_pct,
            sync_to_alert=preference.sync_to_alert),
        stop_loss_pct=preference.stop_loss or None,
        take_profit_pct=preference.take_profit or None,
        ladder=ladder_from_value(preference.take_profit_ladder),
        breakeven_after=preference.breakeven_after or None,
        breakeven_to=preference.breakeven_to or "entry",
        trailing=Trailing.from_value(preference.trailing_stop),
        slippage_bps=slippage_bps, taker_fee=taker_fee, starting_equity=starting_equity, hedge_mode=hedge_mode,
    )


# --- the task --------------------------------------------------------------------------------------------


def replay_execute(run_id: int, *, exchange: Exchange | None = None) -> str:
    """Run a queued replay to its end (the worker's task). A run already done or failed is left alone
    (django-q2 may deliver a task twice); any error ends it failed, in words."""
    run = ReplayRun.objects.filter(pk=run_id).first()
    if run is None:
        return f"replay {run_id}: deleted before it ran"
    if run.status in (ReplayRun.Status.DONE, ReplayRun.Status.FAILED):
        return f"replay {run_id}: already {run.status}"
    _progress(run, 1, "starting", status=ReplayRun.Status.RUNNING)
    try:
        outcome = _replay(run, exchange or get_exchange())
    except Exception as error:  # a failed run says why on its page; the worker's log has the traceback
        logger.exception("replay %s failed", run_id)
        ReplayRun.objects.filter(pk=run_id).update(status=ReplayRun.Status.FAILED, error=_said(error),
                                                   stage="failed", finished_at=timezone.now())
        return f"replay {run_id}: failed: {_said(error)}"
    ReplayRun.objects.filter(pk=run_id).update(status=ReplayRun.Status.DONE, progress=100, stage="done",
                                               result=outcome_json(outcome), finished_at=timezone.now())
    return f"replay {run_id}: done, {outcome.alerts} alert(s), {outcome.differences_total} difference(s)"


def _said(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, ValueError | PermanentError | ValidationError) else f"{type(error).__name__}: {text}"


def _progress(run: ReplayRun, progress: int, stage: str, *, status: str | None = None) -> None:
    changes: dict[str, object] = {"progress": progress, "stage": stage[:200]}
    if status is not None:
        changes["status"] = status
    ReplayRun.objects.filter(pk=run.pk).update(**changes)


def _replay(run: ReplayRun, exchange: Exchange) -> Outcome:
    notes: list[str] = []
    _progress(run, 3, "reading the recorded alerts")
    signals = list(Signal.objects.filter(strategy=run.strategy, status__in=ACCEPTED, received_at__gte=run.start,
                                         received_at__lt=run.end).order_by("received_at", "id"))
    alerts = [alert_of(signal) for signal in signals]
    symbols = sorted({alert.symbol for alert in alerts})
    bars: dict[str, list[replay.Bar]] = {}
    history = True
    for n, symbol in enumerate(symbols):
        _progress(run, 5 + 55 * n // len(symbols), f"importing the klines of {symbol} ({n + 1} of {len(symbols)})")
        if history:
            try:
                klines_import(exchange, symbol, run.start, run.end)
            except PermanentError as error:
                if getattr(error, "code", "") != "no-history":
                    raise
                history = False
                notes.append(f"{NO_HISTORY_NOTE} ({error})")
        bars[symbol] = bars_of(symbol, run.start, run.end)
    _progress(run, 62, "reading the symbols' rules")
    rules: dict[str, SymbolRules] = {symbol: exchange.get_symbol_rules(symbol) for symbol in symbols}
    hedge_mode = exchange.is_hedge_mode() if alerts else False
    taker_fee = taker_fee_of(exchange)
    if exchange.name != "paper":
        notes.append(f"taker fee {taker_fee * 100}% a fill: Binance's default tier, not this account's own")
    starting_equity, equity_note = _starting_equity(exchange, run.start)
    if equity_note:
        notes.append(equity_note)
    notes.append(FUNDING_NOTE)
    recorded_preference, preference_note = preference_at(run.strategy, run.start)
    notes.append(preference_note)
    common = partial(simulation_settings, slippage_bps=run.slippage_bps, taker_fee=taker_fee,
                     starting_equity=starting_equity, hedge_mode=hedge_mode)
    recorded_settings = common(recorded_preference)
    changed_settings = common(settings_with(recorded_preference, run.overrides, stored=True))
    _progress(run, 70, "replaying under the recorded settings")
    recorded = replay.simulate(alerts, bars, recorded_settings, rules)
    _progress(run, 82, "replaying under the new settings")
    changed = replay.simulate(alerts, bars, changed_settings, rules)
    _progress(run, 92, "reading what really happened from the ledger")
    reality = reality_of(run.strategy, run.start, run.end, starting_equity)
    for result, name in ((recorded, "recorded"), (changed, "new")):
        if result.open_positions:
            held = ", ".join(f"{position.symbol} {position.amount}" for position in result.open_positions)
            notes.append(f"still open at the end under the {name} settings (outside net P&L): {held}")
    differences = differences_of(alerts, recorded, changed)
    return Outcome(reality=reality, recorded=column_of(recorded), changed=column_of(changed),
                   differences=tuple(differences[:DIFFERENCES_MAX]), differences_total=len(differences),
                   alerts=len(alerts), notes=tuple(notes))


def alert_of(signal: Signal) -> replay.Alert:
    """A recorded signal as the simulator takes it: the intent exactly as trading/deciding.py builds it,
    with the alert's own take-profit prices and trailing callback (as trading/protection.py reads them)."""
    intent = engine.Intent(action=signal.action, quantity=signal.quantity, quantity_type=signal.quantity_type,
                           price=signal.price, market_position=signal.market_position,
                           prev_market_position=signal.prev_market_position, position_size=signal.position_size,
                           stop_loss=signal.stop_loss)
    payload = signal.payload if isinstance(signal.payload, dict) else {}
    try:
        ladder = alert_tp_ladder(payload.get("tp"))
    except ValueError:
        ladder = None
    take_profits = ladder if ladder is not None else ((signal.take_profit,) if signal.take_profit is not None else ())
    try:
        trail = alert_trail(payload.get("trail"))
    except ValueError:
        trail = None
    return replay.Alert(time=signal.received_at, symbol=signal.symbol, intent=intent, stop_loss=signal.stop_loss,
                        take_profits=tuple(take_profits), trail=trail)


def bars_of(symbol: str, start: datetime, end: datetime) -> list[replay.Bar]:
    rows = Kline.objects.filter(symbol=symbol, open_time__gte=start, open_time__lt=end).order_by("open_time")
    return [replay.Bar(symbol, open_time, open_, high, low, close)
            for open_time, open_, high, low, close in rows.values_list("open_time", "open", "high", "low", "close")]


def taker_fee_of(exchange: Exchange) -> Decimal:
    if exchange.name == "paper":
        return Decimal(django_settings.PAPER_TAKER_FEE)
    return BINANCE_TAKER_FEE  # the account's own tier is not asked for: the default tier, said in the notes


def _starting_equity(exchange: Exchange, start: datetime) -> tuple[Decimal, str]:
    snapshot = (AccountSnapshot.objects.filter(account=exchange.account_id, taken_at__lte=start)
                .order_by("-taken_at").first())
    if snapshot is not None:
        return snapshot.equity, ""
    return DEFAULT_STARTING_EQUITY, (f"no account snapshot before the period: both replays start from "
                                     f"{DEFAULT_STARTING_EQUITY} USDT")


def preference_at(strategy: str, moment: datetime) -> tuple[StrategyPreference, str]:
    """The strategy's settings at `moment` (its history), else as they are now."""
    historical = StrategyPreference.history.as_of(moment).filter(name=strategy).first()
    if historical is not None:
        return historical, f"recorded settings: the strategy's as of {moment:%Y-%m-%d %H:%M} UTC"
    return (StrategyPreference.objects.get(name=strategy),
            "recorded settings: the strategy's current ones (no history from the period's start)")


# --- the columns -----------------------------------------------------------------------------------------


def column_of(result: replay.Result) -> Column:
    stats = result.stats
    return Column(net_pnl=stats.net_pnl, realized_pnl=stats.realized_pnl, fees=stats.fees, funding=stats.funding,
                  trades=stats.trades, win_rate=stats.win_rate, profit_factor=stats.profit_factor,
                  max_drawdown=stats.max_drawdown, max_drawdown_pct=stats.max_drawdown_pct,
                  equity_curve=tuple(CurvePoint(point.time, point.equity) for point in result.equity_curve))


def reality_of(strategy: str, start: datetime, end: datetime, starting_equity: Decimal) -> Column:
    """What the exchange's ledger says the strategy made in the period, and its closing orders."""
    lines = LedgerEntry.objects.filter(strategy=strategy, time__gte=start, time__lt=end)
    totals = {kind: amount or ZERO for kind, amount in
              lines.order_by().values_list("kind").annotate(total=Sum("amount")).values_list("kind", "total")}
    realized = totals.get(LedgerEntry.Kind.REALIZED_PNL, ZERO)
    commission = totals.get(LedgerEntry.Kind.COMMISSION, ZERO)
    funding = totals.get(LedgerEntry.Kind.FUNDING_FEE, ZERO)
    other = totals.get(LedgerEntry.Kind.OTHER, ZERO)
    curve = [CurvePoint(start, starting_equity)]
    balance = starting_equity
    for time, amount in lines.order_by("time", "id").values_list("time", "amount"):
        balance += amount
        curve.append(CurvePoint(time, balance))
    drawdown, drawdown_pct = replay.max_drawdown([point.equity for point in curve])
    orders = Order.objects.filter(Q(execution__strategy=strategy) | Q(protective__execution__strategy=strategy),
                                  created_at__gte=start, created_at__lt=end, executed_qty__gt=0).exclude(realized_pnl=0)
    nets = [pnl - commission_paid for pnl, commission_paid in orders.values_list("realized_pnl", "commission")]
    wins = [net for net in nets if net > 0]
    losses = [net for net in nets if net < 0]
    decided = len(wins) + len(losses)
    return Column(net_pnl=realized + commission + funding + other, realized_pnl=realized, fees=-commission,
                  funding=funding, trades=len(nets),
                  win_rate=Decimal(len(wins)) / decided * HUNDRED if decided else None,
                  profit_factor=sum(wins, ZERO) / -sum(losses, ZERO) if losses else None,
                  max_drawdown=drawdown, max_drawdown_pct=drawdown_pct, equity_curve=tuple(curve))


def differences_of(alerts: Sequence[replay.Alert], recorded: replay.Result, changed: replay.Result) -> list[Difference]:
    """The alerts whose decision, size or outcome differs between the two replays, in time order."""
    before = _per_alert(alerts, recorded)
    after = _per_alert(alerts, changed)
    return [Difference(time=alert.time, symbol=alert.symbol, action=alert.intent.action, recorded=old, changed=new)
            for alert, old, new in zip(alerts, before, after, strict=True) if old != new]


def _per_alert(alerts: Sequence[replay.Alert], result: replay.Result) -> list[AlertOutcome]:
    """Each alert's decision, the quantity its own fills traded, and the closing fills (its own and
    the protective ones until the symbol's next alert) with their net. A trade belongs to the symbol's
    latest alert at or before it."""
    by_symbol: dict[str, list[int]] = {}
    for n, alert in enumerate(alerts):
        by_symbol.setdefault(alert.symbol, []).append(n)
    size = [ZERO] * len(alerts)
    exits: list[list[str]] = [[] for _ in alerts]
    net = [ZERO] * len(alerts)
    times = {symbol: [alerts[n].time for n in indexes] for symbol, indexes in by_symbol.items()}
    for trade in result.trades:
        indexes = by_symbol.get(trade.symbol, [])
        at = bisect_right(times.get(trade.symbol, []), trade.time) - 1
        if at < 0:
            continue
        n = indexes[at]
        if trade.reason.startswith("alert") and trade.time == alerts[n].time:
            size[n] += trade.quantity
        if trade.closes:
            exits[n].append(trade.reason)
            net[n] += trade.net_pnl
    return [AlertOutcome(outcome=decision.outcome, reason=decision.reason, size=size[n], exits=", ".join(exits[n]),
                         net_pnl=net[n])
            for n, decision in enumerate(result.decisions)]


def run_outcome(run: ReplayRun) -> Outcome | None:
    return outcome_read(run.result) if run.status == ReplayRun.Status.DONE and run.result else None
