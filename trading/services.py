"""Executing queued signals: exactly once, in order per symbol, every stage recorded.

The story of one signal, each chapter in its own module:
- `symbol_drain` (here): take the symbol's lane (trading/lanes.py) and execute its pending signals
  oldest first; a task that finds the lane taken returns, since the holder drains everything.
- `signal_execute` (here): claim the signal, then decide (trading/deciding.py: inputs → the pure
  engine.plan), send each leg at most once (trading/sending.py), record and conclude
  (trading/recording.py). A `Mandate` (trading/mandate.py) answers "may I still act" throughout:
  the deadline and the lane.
- Lost work is found again by trading/recovery.py: dead holders' lanes are freed and their pending
  signals queued again within seconds.
docs/EXECUTION.md tells the guarantee and the timings.
"""

import functools
import logging
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Model

from notifications.events import notify
from trading import account_setup, deciding, protection, recording, resting, sending
from trading.engine import Leg, Plan
from trading.exchange import (
    Exchange,
    ExchangeError,
    OrderRequest,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    SymbolSettings,
    get_exchange,
)
from trading.lanes import Lane, LaneLost
from trading.mandate import GaveUp, Mandate
from trading.models import Execution, Order, Signal
from trading.upkeep import PENDING_SIGNALS

logger = logging.getLogger(__name__)

# An entry order in these states never rested on the book: there is nothing to wait for or cancel.
NEVER_RESTED = (Order.Status.PENDING, Order.Status.REJECTED, Order.Status.NOT_FOUND)


# --- lanes: one executor per symbol at a time, signals oldest first ----------------------------------
def symbol_drain(*, symbol: str) -> int:
    """Execute the symbol's pending signals, oldest first, if its lane is free; how many ran."""
    seen: set[int] = set()
    while (lane := Lane.acquire(symbol)) is not None:
        try:
            while (claim := _next_claimed(symbol, exclude=seen)) is not None:
                seen.add(claim.signal.pk)
                signal_execute(signal=claim.signal, lane=lane, claimed=True, first=claim.first)
        except LaneLost as lost:
            logger.warning("%s: stopped, another worker goes on (%s)", symbol, lost)
            return len(seen)
        finally:
            lane.release()
        # A task that found the lane taken just before we released it returned without executing:
        # look once more so its signal is not left waiting for recovery.
        if _next_pending(symbol, exclude=seen) is None:
            break
    return len(seen)


def _next_pending(symbol: str, *, exclude: set[int]) -> Signal | None:
    """The symbol's oldest pending signal not in `exclude`, found through `signal_pending`."""
    sql = _oldest_pending_sql(connection.vendor, len(exclude), _signal_columns(connection.vendor))
    return next(iter(Signal.objects.raw(sql, [symbol, *sorted(exclude)])), None)


@dataclass(frozen=True)
class Claim:
    """A signal this lane holder has just claimed (`executing`). `first`: it was `queued` until now,
    so no earlier attempt can have begun it (an attempt claims before it writes anything): its
    Execution is new, and goes in with its decision in one INSERT."""

    signal: Signal
    first: bool


def _next_claimed(symbol: str, *, exclude: set[int]) -> Claim | None:
    """The symbol's oldest pending signal, claimed: on PostgreSQL in one statement (UPDATE …
    RETURNING, with the status it had, which a sub-select there reads from the statement's snapshot),
    so a round trip and a query build fewer stand before each order (docs/BENCHMARKS.md); elsewhere
    found, then claimed. Only the lane holder claims."""
    sql = _claim_sql(connection.vendor, len(exclude))
    if sql is None:
        signal = _next_pending(symbol, exclude=exclude)
        if signal is None:
            return None
        first = signal.status == Signal.Status.QUEUED
        return Claim(signal, first) if _claim(signal) else None
    params = [Signal.Status.EXECUTING, symbol, *sorted(exclude)]
    signal = next(iter(Signal.objects.raw(sql, params)), None)
    if signal is None:
        return None
    # An old attempt claiming at the same moment (its lane lost) can make this `first` wrongly: the
    # INSERT then finds its row, and its row is taken up (_insert_or_earlier).
    return Claim(signal, first=vars(signal).pop("claimed_from") == Signal.Status.QUEUED)


@functools.lru_cache(maxsize=16)  # a long drain excludes ever more signals: keep the latest few only
def _oldest_pending_sql(vendor: str, excluded: int, what: str) -> str:
    """SELECT `what` of the symbol's oldest pending signal that is not one of `excluded` ids. The
    pending statuses are written into the statement, not passed: only then can the database use the
    partial index of pending signals (`signal_pending`), prepared statement or not (a parameter
    cannot be proven to match the index's condition)."""
    q = connection.ops.quote_name
    pending = ", ".join(f"'{status}'" for status in PENDING_SIGNALS)
    skipped = f" AND {q('id')} NOT IN ({', '.join(['%s'] * excluded)})" if excluded else ""
    return (f"SELECT {what} FROM {q(Signal._meta.db_table)} WHERE {q('symbol')} = %s "
            f"AND {q('status')} IN ({pending}){skipped} ORDER BY {q('received_at')}, {q('id')} LIMIT 1")


@functools.lru_cache(maxsize=16)
def _claim_sql(vendor: str, excluded: int) -> str | None:
    """The one-statement claim for `vendor` that skips `excluded` signals, None where it cannot tell
    the status the signal had (SQLite's RETURNING sub-selects see the row as updated)."""
    if vendor != "postgresql":
        return None
    q = connection.ops.quote_name
    table, pending = q(Signal._meta.db_table), ", ".join(f"'{status}'" for status in PENDING_SIGNALS)
    return (f"UPDATE {table} SET {q('status')} = %s WHERE {q('id')} = ({_oldest_pending_sql(vendor, excluded, q('id'))}) "
            f"AND {q('status')} IN ({pending}) RETURNING {_signal_columns(vendor, table)}, "
            f"(SELECT was.{q('status')} FROM {table} AS was WHERE was.{q('id')} = {table}.{q('id')}) AS claimed_from")


@functools.cache
def _signal_columns(vendor: str, table: str = "") -> str:
    """Signal's columns, for raw() to build instances from (each `table.`-qualified if given)."""
    q = connection.ops.quote_name
    prefix = f"{table}." if table else ""
    return ", ".join(f"{prefix}{q(field.column)}" for field in Signal._meta.concrete_fields if field.column)


# --- one signal ------------------------------------------------------------------------------------
def signal_execute(*, signal: Signal, lane: Lane, claimed: bool = False, first: bool = False) -> Execution | None:
    """Execute one pending signal while holding its symbol's lane (`claimed`: _next_claimed has
    claimed it; `first`: and no earlier attempt can have begun it). Raises LaneLost if the lane goes:
    the execution is then left for the next holder, which resumes it where it stopped."""
    if not claimed and not _claim(signal):
        return None  # someone else finished it
    # A first attempt's row is written once its decision is made (one INSERT with it); any other
    # attempt's is written first, or found: an earlier attempt's decision and orders stand.
    exchange = get_exchange()
    execution = _execution_new(signal, exchange)
    if not first:
        execution = _insert_or_earlier(execution)
    mandate = Mandate(lane=lane, received_at=signal.received_at)
    try:
        execution, plan = _plan_for(execution, signal, exchange, mandate)
        if plan is not None:
            orders = _legs_execute(execution, plan, signal, exchange, mandate)
            # Protection before the execution is final: a worker that dies in between leaves the
            # execution to be resumed, and the resumed attempt places it (placing is idempotent).
            if any(order.executed_qty > 0 for order in orders):  # a limit entry may have filled in part
                protection.position_protect(execution=execution, signal=signal, exchange=exchange)
            if not resting.entry_conclude(execution, plan, orders):
                recording.execution_conclude(execution, plan, orders, signal.price)
    except LaneLost:
        raise
    except PermanentError as error:
        recording.execution_finish(execution, Execution.Status.REJECTED, error.reason, error_code=error.code,
                                   error_message=error.reason)
    except (GaveUp, RetryableError, OutcomeUnknown) as error:
        code = error.code if isinstance(error, ExchangeError) else ""
        recording.execution_finish(execution, Execution.Status.FAILED, f"gave up: {error}", error_code=code,
                                   error_message=str(error))
    except Exception as error:
        logger.exception("execution %s of signal %s failed", execution.pk, signal.pk)
        recording.execution_finish(execution, Execution.Status.FAILED,
                                   f"unexpected error: {type(error).__name__}: {error}")
    return execution


def _claim(signal: Signal) -> bool:
    claimed = Signal.objects.filter(pk=signal.pk, status__in=PENDING_SIGNALS).update(status=Signal.Status.EXECUTING)
    if claimed:
        signal.status = Signal.Status.EXECUTING
    return claimed == 1


def _execution_new(signal: Signal, exchange: Exchange) -> Execution:
    """The signal's execution as this attempt begins it (`started_at` now), not yet written."""
    return Execution(signal=signal, strategy=signal.strategy, symbol=signal.symbol, exchange=exchange.name,
                     received_at=signal.received_at, queued_at=signal.queued_at, signal_price=signal.price, attempts=1)


def _insert_or_earlier(execution: Execution) -> Execution:
    """`execution` inserted, or the one an earlier attempt inserted (it is resumed, one attempt more).
    The INSERT is tried first: where no earlier row exists, by far the usual case, one statement."""
    try:
        _insert(execution)
    except IntegrityError:  # one execution per signal: an earlier attempt's
        earlier = Execution.objects.filter(signal=execution.signal).first()
        if earlier is None:
            raise
        earlier.signal = execution.signal  # and signal.execution is this row again, not the insert that failed
        # Only the lane holder runs this, so counting in memory is safe: one query, not an update and a read.
        earlier.attempts += 1
        earlier.save(update_fields=["attempts"])
        return earlier
    return execution


def _insert(row: Model) -> None:
    """INSERT `row`, raising IntegrityError if it exists. In autocommit, one statement; inside a
    caller's transaction, in a savepoint, so a duplicate does not break that transaction."""
    if connection.in_atomic_block:
        with transaction.atomic():
            row.save(force_insert=True)
    else:
        row.save(force_insert=True)


def _plan_for(execution: Execution, signal: Signal, exchange: Exchange,
              mandate: Mandate) -> tuple[Execution, Plan | None]:
    """The execution's row and its plan: an earlier attempt's decision, or a new one; no plan when the
    decision ended the execution. A row not yet written (a first attempt) goes in with its decision."""
    if execution.decision:
        return execution, Plan.from_dict(execution.decision)
    decision = deciding.decide(signal=signal, exchange=exchange, mandate=mandate)
    execution.alert_mismatch = decision.mismatch
    if isinstance(decision, Plan):
        execution.decision = decision.as_dict()
    if execution.pk is None:
        row = _insert_or_earlier(execution)
        if row is not execution:  # an older attempt was there first after all: its decision stands
            return _plan_for(row, signal, exchange, mandate)
    elif execution.decision:
        execution.save(update_fields=["decision", "alert_mismatch"])
    if decision.mismatch:
        logger.warning("signal %s %s: %s", signal.pk, signal.symbol, decision.mismatch)
        notify("protection", f"{signal.strategy} {signal.symbol}: {decision.mismatch}", strategy=signal.preference)
    if isinstance(decision, deciding.Verdict):
        recording.execution_finish(execution, decision.status, decision.reason, signal_status=decision.signal_status)
        return execution, None
    return execution, decision


def _legs_execute(execution: Execution, plan: Plan, signal: Signal, exchange: Exchange, mandate: Mandate) -> list[Order]:
    """Each leg in turn; a later leg waits on the earlier ones (a reversal never opens if its close
    did not fill, or find its position already closed at the exchange). Resumed legs that already
    ended are taken as they are."""
    orders: list[Order] = []
    for index, leg in enumerate(plan.legs, start=1):
        if orders and not recording.leg_done(orders[-1]):
            break
        order = _order_for(execution, signal, index, leg)
        refusal = (_account_settings(execution, signal, exchange, mandate)
                   if leg.opens and order.status == Order.Status.PENDING else None)
        if refusal is not None:
            orders.append(recording.order_refused(order, refusal[0], reason=refusal[1]))
            break
        request = OrderRequest(symbol=order.symbol, side=order.side, quantity=order.quantity,
                               client_order_id=order.client_order_id, reduce_only=order.reduce_only,
                               position_side=order.position_side, price_hint=plan.price or signal.price,
                               limit_price=order.price, post_only=order.time_in_force == "GTX")
        order = sending.leg_execute(order, exchange=exchange, mandate=mandate, request=request)
        orders.append(order)
        if leg.entry is not None and order.sent_at is not None and order.status not in NEVER_RESTED:
            ended = resting.entry_settle(order, leg, execution=execution, signal=signal, exchange=exchange,
                                         mandate=mandate)
            orders[-1] = ended.order
            if ended.remainder is not None:
                orders.append(ended.remainder)
            execution.decision = {**execution.decision, "entry": ended.words}
            Execution.objects.filter(pk=execution.pk).update(decision=execution.decision)
        execution.sent_at = execution.sent_at or order.sent_at
        execution.acknowledged_at = execution.acknowledged_at or orders[-1].acknowledged_at
    if mandate.budget_waited:  # a burst larger than the exchange's rate limits: say what it cost
        execution.decision = {**execution.decision, "order_budget": f"waited {mandate.budget_waited:.2f} s for the order budget"}
        execution.save(update_fields=["decision"])
    return orders


def _order_for(execution: Execution, signal: Signal, index: int, leg: Leg) -> Order:
    """The leg's order: new, or the one an earlier attempt recorded (and may have sent)."""
    order = Order(execution=execution, leg=index, purpose=leg.purpose, client_order_id=client_order_id(signal, index),
                  symbol=signal.symbol, side=leg.side, position_side=leg.position_side, quantity=leg.quantity,
                  reduce_only=leg.reduce_only)
    if leg.entry is not None:
        order.order_type, order.price = "LIMIT", leg.entry.price
        order.time_in_force = "GTX" if leg.entry.post_only else "GTC"
    try:
        _insert(order)
    except IntegrityError:
        # Order has other unique fields: only a row for this execution and leg makes it a resumed leg.
        earlier = Order.objects.filter(execution=execution, leg=index).first()
        if earlier is None:
            raise
        # The very object this attempt concludes, not a second copy loaded with the order: what the leg
        # notes on it ("the exchange closed it first") must be there when the execution is concluded.
        earlier.execution = execution
        return earlier
    return order


def _account_settings(execution: Execution, signal: Signal, exchange: Exchange,
                      mandate: Mandate) -> tuple[PermanentError, str] | None:
    """Margin type and leverage for an opening leg, as the strategy wants them (trading/account_setup.py:
    checked against the exchange, set where they differ; what was changed goes into the decision).
    A refusal is returned with its reason: it stops the opening leg only — closing legs never wait on
    account settings."""
    preference = signal.preference
    if preference is None:
        return None
    applied = account_setup.settings_apply(
        exchange=exchange, symbol=signal.symbol, retrying=mandate.retrying,
        wanted=SymbolSettings(signal.symbol, preference.leverage, preference.margin_type))
    if applied.notes:
        logger.info("signal %s %s: %s", signal.pk, signal.symbol, "; ".join(applied.notes))
        execution.decision = {**execution.decision, "account_settings": applied.notes}
        execution.save(update_fields=["decision"])
    return applied.refusal


def client_order_id(signal: Signal, leg: int) -> str:
    """Unique per signal and leg, and across database resets (the receipt time is part of it), so a
    lookup by it can never find some other signal's order. ≤36 chars of ^[.A-Z:/a-z0-9_-]$."""
    received_ms = int(signal.received_at.timestamp() * 1000)
    return f"at-{_base36(signal.pk)}-{_base36(received_ms)}-{leg}"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out

