"""The worker's path from a queued signal to its order leaving for the exchange, in statements: each is a
round trip to the database. The path inserts first (lane, execution, order) and looks a row up only
when the insert finds it exists, so these tests also prove a task run twice, a resumed execution and
a resumed order still act exactly once."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from preferences.models import StrategyPreference
from tests.trading.test_execution import queued
from trading import deciding, sending, services
from trading.engine import Leg
from trading.exchange import reset_exchange
from trading.exchange.paper import PaperExchange
from trading.lanes import Lane
from trading.models import Execution, Order, PaperOrder, Signal
from trading.tasks import execute_signal

D = Decimal

# Production runs in autocommit: BEGIN and COMMIT are statements of their own there, and are counted.
# Tests that run in a transaction see savepoints instead; both are counted, with their own totals.
def modes(autocommit: object = None, in_transaction: object = None) -> list:
    """Parameters `mode` (and `expected`, when given) for a test run both ways."""
    values = {"autocommit": autocommit, "in_transaction": in_transaction}
    marks = {"autocommit": pytest.mark.django_db(transaction=True), "in_transaction": pytest.mark.django_db}
    return [pytest.param(mode, *([] if value is None else [value]), marks=marks[mode], id=mode)
            for mode, value in values.items()]

SENDING = "UPDATE \"trading_order\" SET \"status\" = 'sent'"


@pytest.fixture(autouse=True)
def _paper(settings):
    settings.EXCHANGE = "paper"
    settings.PAPER_BALANCE = D("10000")
    settings.LANE_LEASE = 60  # no lease renewal in the middle of a count, however slow the machine
    reset_exchange()
    yield
    reset_exchange()


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"], leverage=5, allocation_pct=D(10))


class WorkerKilled(BaseException):
    """The worker dies here: no `except Exception` of the execution records anything."""


def statements_until_sent(signal: Signal) -> list[str]:
    """Every statement from the task's start to the order's compare-and-set to `sent` (excluded)."""
    with CaptureQueriesContext(connection) as captured:
        run(signal)
    statements = [query["sql"] for query in captured.captured_queries]
    sent = [index for index, sql in enumerate(statements) if sql.startswith(SENDING)]
    assert sent, "no order was sent"
    return statements[: sent[0]]


def run(signal: Signal) -> str:
    """The task, as a job queued with the signal's id and symbol runs it."""
    return execute_signal(signal.pk, signal.symbol)


def touching(statements: list[str], table: str) -> list[str]:
    return [sql.split(" ", 1)[0] for sql in statements if f'"{table}"' in sql.split(" WHERE ", 1)[0]]


def listing(statements: list[str]) -> str:
    return "\n".join(f"{index:3} {sql[:120]}" for index, sql in enumerate(statements))


# --- how many ------------------------------------------------------------------------------------
# The paper exchange keeps its book in the same database, so its statements are part of these totals.
def one_statement_claim() -> bool:
    """PostgreSQL finds and claims the next signal in one statement; SQLite finds it, then claims it."""
    return connection.vendor == "postgresql"


@pytest.mark.parametrize(("mode", "expected"), modes(autocommit=10, in_transaction=14))
def test_a_fresh_opening_signal_on_a_known_symbol_costs_so_many_statements(mode, expected, strategy):
    run(queued(strategy, "buy"))  # the worker knows the symbol: its lane, account settings, equity
    run(queued(strategy, "close"))
    statements = statements_until_sent(queued(strategy, "buy"))
    expected += 0 if one_statement_claim() else 1
    assert len(statements) == expected, listing(statements)
    # The task was given the symbol: the path starts by taking the lane, in one statement.
    assert statements[0].startswith('UPDATE "trading_symbollane"')
    assert touching(statements, "trading_symbollane") == ["UPDATE"]
    # The signal: found and claimed in one UPDATE … RETURNING (elsewhere, a SELECT then the UPDATE).
    assert touching(statements, "trading_signal") == (["UPDATE"] if one_statement_claim() else ["SELECT", "UPDATE"])
    # The execution and the order: one INSERT each, no look-up first; the execution's carries the
    # decision (a first attempt: nothing can have begun it before).
    assert touching(statements, "trading_execution") == ["INSERT"]
    assert touching(statements, "trading_order") == ["INSERT"]
    # The strategy is read once, for the decision; the account settings use that read.
    assert touching(statements, "preferences_strategypreference") == ["SELECT"]
    # ... and no transaction around them; in a caller's transaction, a savepoint each.
    transactions = [sql.split(" ", 1)[0] for sql in statements if sql.startswith(("BEGIN", "COMMIT", "SAVEPOINT"))]
    assert transactions == ([] if mode == "autocommit" else ["SAVEPOINT", "SAVEPOINT"]), listing(statements)


# Leverage and margin type are read first (one SELECT of the paper book), so only the leverage differs
# and is set; the decision then says so (one UPDATE).
@pytest.mark.parametrize(("mode", "expected"), modes(autocommit=35, in_transaction=39))
def test_the_first_signal_on_a_symbol_also_creates_its_lane(mode, expected, strategy):
    statements = statements_until_sent(queued(strategy))
    expected += 0 if one_statement_claim() else 1
    assert len(statements) == expected, listing(statements)
    assert touching(statements, "trading_symbollane")[:2] == ["UPDATE", "SELECT"]  # no row yet: made, then taken
    assert touching(statements, "trading_symbollane")[-1] == "UPDATE"


@pytest.mark.django_db
def test_without_the_one_statement_claim_the_signal_is_found_then_claimed_in_order(strategy, monkeypatch):
    monkeypatch.setattr(services, "_claim_sql", lambda vendor, excluded: None)  # as on SQLite
    first, second = queued(strategy, "buy"), queued(strategy, "close")
    statements = statements_until_sent(first)
    assert touching(statements, "trading_signal") == ["SELECT", "UPDATE"]
    assert Signal.objects.get(pk=first.pk).status == Signal.Status.DONE
    assert Signal.objects.get(pk=second.pk).status == Signal.Status.DONE  # drained after it, oldest first
    assert Execution.objects.get(signal=first).id < Execution.objects.get(signal=second).id


@pytest.mark.django_db
def test_a_job_queued_with_the_id_alone_still_runs(strategy):
    signal = queued(strategy)
    assert execute_signal(signal.pk) == "BTCUSDT: executed 1 signal(s)"
    assert execute_signal(10**9) == "signal 1000000000 does not exist"
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.DONE


# --- and still exactly once ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", modes())
def test_a_second_task_for_the_signal_sends_nothing_more(mode, strategy):
    signal = queued(strategy)
    assert run(signal) == "BTCUSDT: executed 1 signal(s)"
    assert run(signal) == "BTCUSDT: lane busy or nothing pending"
    assert PaperOrder.objects.count() == 1 and Order.objects.count() == 1
    assert Execution.objects.get(signal=signal).attempts == 1


@pytest.mark.parametrize("mode", modes())
def test_an_execution_killed_after_sending_is_resumed_with_its_rows_and_decision(mode, strategy, monkeypatch):
    signal = queued(strategy)
    place = PaperExchange.place_market_order

    def killed(self, *args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(PaperExchange, "place_market_order", killed)  # after the compare-and-set to `sent`
    with pytest.raises(WorkerKilled):
        run(signal)
    first = Execution.objects.get(signal=signal)
    [order] = first.orders.all()
    assert (first.attempts, order.status, Signal.objects.get(pk=signal.pk).status) == (1, "sent", "executing")

    monkeypatch.setattr(PaperExchange, "place_market_order", place)
    monkeypatch.setattr(deciding, "decide", lambda **kwargs: pytest.fail("decided again"))
    assert run(signal) == "BTCUSDT: executed 1 signal(s)"
    execution = Execution.objects.get(signal=signal)
    assert (execution.pk, execution.attempts, execution.status) == (first.pk, 2, Execution.Status.FILLED)
    assert execution.decision == first.decision
    assert list(execution.orders.values_list("pk", "status")) == [(order.pk, "FILLED")]
    assert PaperOrder.objects.count() == 1 and Order.objects.count() == 1


@pytest.mark.parametrize("mode", modes())
def test_an_order_recorded_before_the_kill_is_taken_up_not_recorded_again(mode, strategy, monkeypatch):
    signal = queued(strategy)
    leg_execute = sending.leg_execute

    def killed(order, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(sending, "leg_execute", killed)  # the order is recorded, still `pending`
    with pytest.raises(WorkerKilled):
        run(signal)
    [order] = Order.objects.all()
    assert order.status == Order.Status.PENDING and not PaperOrder.objects.exists()

    resumed = []

    def leg_execute_seen(order, **kwargs):
        resumed.append(order.pk)
        return leg_execute(order, **kwargs)

    monkeypatch.setattr(sending, "leg_execute", leg_execute_seen)
    run(signal)
    assert resumed == [order.pk]
    assert Execution.objects.get(signal=signal).attempts == 2
    assert list(Order.objects.values_list("pk", "status")) == [(order.pk, "FILLED")]
    assert PaperOrder.objects.count() == 1


@pytest.mark.parametrize("mode", modes())
def test_an_order_that_clashes_on_another_unique_field_is_an_error_not_a_resumed_leg(mode, strategy):
    signal = queued(strategy)
    execution = Execution.objects.create(signal=signal, strategy=strategy.name, symbol="BTCUSDT", exchange="paper",
                                         received_at=signal.received_at)
    # Some other order (reported by the exchange, say) already holds this leg's client order id.
    Order.objects.create(execution=None, leg=0, purpose="open", client_order_id=services.client_order_id(signal, 1),
                         symbol="BTCUSDT", side="BUY", quantity=D("1"), source=Order.Source.MANUAL)
    leg = Leg(purpose="open", side="BUY", quantity=D("0.111"), reduce_only=False, position_side="BOTH")
    with pytest.raises(IntegrityError):
        services._order_for(execution, signal, 1, leg)
    assert Order.objects.count() == 1  # and a surrounding transaction is still usable


# --- a first attempt: its execution goes in with its decision --------------------------------------
@pytest.mark.parametrize("mode", modes())
def test_the_claim_tells_a_first_attempt_from_a_resumed_one(mode, strategy):
    fresh = queued(strategy)
    claim = services._next_claimed("BTCUSDT", exclude=set())
    assert (claim.signal.pk, claim.signal.status, claim.first) == (fresh.pk, Signal.Status.EXECUTING, True)
    # Claimed already (a worker died holding it): the next claim is no first attempt.
    again = services._next_claimed("BTCUSDT", exclude=set())
    assert (again.signal.pk, again.first) == (fresh.pk, False)
    assert services._next_claimed("BTCUSDT", exclude={fresh.pk}) is None


@pytest.mark.parametrize("mode", modes())
def test_a_first_attempt_that_finds_an_older_attempts_row_takes_it_up(mode, strategy, monkeypatch):
    """An old lane holder can claim at the very moment the new one does, so `first` may be wrong:
    the INSERT then meets the older row, whose decision and order stand."""
    signal = queued(strategy)
    place = PaperExchange.place_market_order

    def killed(self, *args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(PaperExchange, "place_market_order", killed)
    with pytest.raises(WorkerKilled):
        run(signal)
    older = Execution.objects.get(signal=signal)
    monkeypatch.setattr(PaperExchange, "place_market_order", place)
    strategy.allocation_pct = D(50)  # a decision made now would differ
    strategy.save()

    lane = Lane.acquire("BTCUSDT")
    try:
        execution = services.signal_execute(signal=Signal.objects.get(pk=signal.pk), lane=lane, claimed=True, first=True)
    finally:
        lane.release()
    assert (execution.pk, execution.attempts, execution.status) == (older.pk, 2, Execution.Status.FILLED)
    assert Execution.objects.get(pk=older.pk).decision == older.decision
    assert list(Order.objects.values_list("quantity", "status")) == [(D("0.111"), "FILLED")]
    assert PaperOrder.objects.count() == 1


@pytest.mark.parametrize("mode", modes())
def test_a_first_attempt_whose_decision_fails_is_recorded_failed(mode, strategy, monkeypatch):
    signal = queued(strategy)

    def broken(**kwargs):
        raise RuntimeError("the decision broke")

    monkeypatch.setattr(deciding, "decide", broken)
    run(signal)
    execution = Execution.objects.get(signal=signal)
    assert (execution.status, execution.reason) == (Execution.Status.FAILED, "unexpected error: RuntimeError: the decision broke")
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.FAILED
    assert not Order.objects.exists() and not PaperOrder.objects.exists()


@pytest.mark.parametrize("mode", modes())
def test_a_first_attempt_that_ends_without_an_order_still_writes_its_execution(mode, strategy):
    signal = queued(strategy, "close")  # nothing is open
    run(signal)
    execution = Execution.objects.get(signal=signal)
    assert (execution.status, execution.attempts, execution.decision) == (Execution.Status.NOTHING, 1, {})
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.DONE


@pytest.mark.django_db
def test_the_search_for_the_next_signal_uses_only_the_pending_signals_index():
    """The pending statuses are written into the statement, so that the database can use the partial
    index `signal_pending` (trading/0010), which holds pending signals only: the search does not walk
    the symbol's history. PostgreSQL even in the generic plan of a prepared statement."""
    search = services._oldest_pending_sql(connection.vendor, 1, '"id"')
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a test's table is small enough to scan
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute("EXPLAIN " + services._claim_sql(connection.vendor, 1), [Signal.Status.EXECUTING, "BTCUSDT", 1])
            claim = "\n".join(row[0] for row in cursor.fetchall())
            assert "signal_pending" in claim.split("InitPlan", 1)[1], claim
            cursor.execute("EXPLAIN " + search, ["BTCUSDT", 1])
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + search, ["BTCUSDT", 1])
        plan = "\n".join(str(row) for row in cursor.fetchall())
    assert "signal_pending" in plan, plan
