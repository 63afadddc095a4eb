"""trading/reused.py: an UPDATE written once by the ORM, then run with new values, must be exactly the
statement the ORM would write for those values, and act as it would."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import CharField, DurationField, JSONField
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from trading import lanes, sending
from trading.lanes import Lane
from trading.models import Execution, Order, Signal, SymbolLane
from trading.reused import ReusedUpdate

pytestmark = pytest.mark.django_db


def an_order(**fields: object) -> Order:
    now = timezone.now()
    signal = Signal.objects.create(symbol="BTCUSDT", action="buy", status=Signal.Status.EXECUTING, received_at=now)
    execution = Execution.objects.create(signal=signal, strategy="S", symbol="BTCUSDT", exchange="paper", received_at=now)
    return Order.objects.create(execution=execution, leg=1, purpose="open", client_order_id="at-1-1-1", symbol="BTCUSDT",
                                side="BUY", quantity=Decimal("0.1"), **fields)


def as_run(update: ReusedUpdate, values: dict) -> tuple[str, tuple]:
    """The statement and parameters `update.run(**values)` executes."""
    written = update._written()
    slots = dict(written.slots)
    return written.sql, tuple(update.changing[slots[index]].get_db_prep_save(values[slots[index]], connection)
                              if index in slots else param for index, param in enumerate(written.params))


def test_taking_a_lane_runs_what_the_orm_writes_with_the_values_of_this_run():
    values = {"symbol": "ETHUSDT", "holder": "host:1:abc", "lease": timedelta(seconds=7)}
    assert as_run(lanes._TAKE, values) == lanes._TAKE.sql(**values)
    with CaptureQueriesContext(connection) as captured:
        assert lanes._TAKE.run(**values) == 0  # no such lane yet
    [query] = captured.captured_queries
    assert query["sql"].startswith('UPDATE "trading_symbollane" SET "holder" = ') and "host:1:abc" in query["sql"]


def test_the_lease_is_a_value_of_each_run_not_of_the_first(settings):
    SymbolLane.objects.create(symbol="BTCUSDT")
    for seconds in (5, 60):
        settings.LANE_LEASE = seconds
        lane = Lane.acquire("BTCUSDT")
        assert lane is not None
        lease_until = SymbolLane.objects.get(symbol="BTCUSDT").lease_until
        assert timedelta(seconds=seconds - 2) < lease_until - timezone.now() <= timedelta(seconds=seconds)
        lane.release()


def test_a_taken_lane_is_not_taken_again_until_released():
    first = Lane.acquire("BTCUSDT")
    assert first is not None and Lane.acquire("BTCUSDT") is None
    first.release()
    assert Lane.acquire("BTCUSDT") is not None


@pytest.mark.parametrize("resent", [False, True])
def test_the_compare_and_set_is_what_the_orm_writes(resent):
    update = sending._CLAIM_RESENT if resent else sending._CLAIM_UNSENT
    values = {"pk": 7, "status": "pending", "stamp": 1_700_000_000_123, "now": timezone.now(), "symbol": "BTCUSDT",
              "holder": "host:1:abc"} | ({"seen": 1_700_000_000_001} if resent else {})
    assert as_run(update, values) == update.sql(**values)


@pytest.mark.parametrize("resent", [False, True])
def test_the_compare_and_set_moves_an_order_to_sent_only_from_what_was_seen_and_by_the_holder(resent):
    lane = Lane.acquire("BTCUSDT")
    order = an_order(status=Order.Status.UNKNOWN if resent else Order.Status.PENDING,
                     sent_stamp=1_700_000_000_001 if resent else None)
    update = sending._CLAIM_RESENT if resent else sending._CLAIM_UNSENT
    values = {"pk": order.pk, "status": order.status, "stamp": 1_700_000_000_500, "now": timezone.now(),
              "symbol": "BTCUSDT", "holder": lane.holder} | ({"seen": order.sent_stamp} if resent else {})
    assert update.run(**(values | {"holder": "someone:else:1"})) == 0
    if resent:
        assert update.run(**(values | {"seen": 1_700_000_000_002})) == 0
    assert update.run(**(values | {"status": Order.Status.SENT})) == 0
    assert update.run(**values) == 1
    order.refresh_from_db()
    assert (order.status, order.sent_stamp, order.sent_at) == (Order.Status.SENT, 1_700_000_000_500, values["now"])
    assert update.run(**values) == 0  # it is `sent` now: not what was seen
    lane.release()


def test_a_value_named_changing_that_is_no_parameter_is_an_error():
    update = ReusedUpdate(lambda *, symbol, other: (SymbolLane.objects.filter(symbol=symbol), {"holder": "x"}),
                          symbol=CharField(), other=CharField())
    with pytest.raises(RuntimeError, match=r"\['other'\] are not parameters"):
        update.run(symbol="BTCUSDT", other="y")


def test_a_value_of_a_type_without_a_marker_is_refused():
    update = ReusedUpdate(lambda *, data: (SymbolLane.objects.all(), {"holder": "x"}), data=JSONField())
    with pytest.raises(TypeError, match="no marker for a JSONField"):
        update.run(data={})


def test_a_duration_marker_lands_where_the_orm_puts_the_duration():
    written = lanes._TAKE._written()
    landed = [written.params[index] for index, name in written.slots if name == "lease"]
    assert landed == [DurationField().get_db_prep_save(timedelta(days=12345, microseconds=3), connection)]
