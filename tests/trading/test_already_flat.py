"""When the exchange got there first (issue #24): a close that finds its position already closed is
"already flat", not a failure. Our take-profit or stop closed it → the execution ends `nothing`, its
reason names the order and the time; a liquidation or a trade outside this system closed it → the
same, as a warning, and our records match the exchange; only a refusal that leaves the close undone
stays a failure. Raced both ways, offline: the fake exchange and the paper exchange trigger protective
orders when their price crosses, and report them as the user data stream does."""

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.events import execution_finished
from notifications.models import Channel, Notification
from preferences.models import StrategyPreference
from tests.fakes.binance_server import FakeBinance
from tests.support.stream import settles
from tests.support.webhook import alert, strategy_create, webhook_client  # noqa: F401 (the `client` fixture)
from trading import closed_first
from trading.closed_first import Cause, gap, recorded_close, stream_connected
from trading.exchange import ProtectiveStatus, ProtectiveUpdate, get_exchange, reset_exchange
from trading.live import HEARTBEAT, protective_update_apply
from trading.models import (
    Execution,
    Order,
    PaperPosition,
    PaperProtective,
    Position,
    ProtectiveOrder,
    Signal,
    SymbolLane,
    WorkerHeartbeat,
)
from trading.protection import position_settle
from trading.tasks import execute_signal

D = Decimal
TAKE_PROFIT, STOP_LOSS = "46350.0", "44100.0"  # 45,000 + 3 % and − 2 %, on BTCUSDT's 0.1 tick
WHEN = (r"at \d\d:\d\d:\d\d\.\d\d\d UTC, \d+(\.\d)? (ms|s) "
        r"(before this alert|after this alert arrived, before our order reached the exchange)")
_seq = count()


# --- the setting: a strategy with a stop-loss and a take-profit, against the fake exchange ----------------
@pytest.fixture
def strategy(db) -> StrategyPreference:
    return strategy_create(stop_loss=D(2), take_profit=D(3))


@pytest.fixture
def channel(db) -> Channel:
    """A channel that wants every kind of news: what it is told is what a trader would be."""
    return Channel.objects.create(name="desk", kind="email", email_to="desk@example.com")


def mirror() -> Decimal:
    row = Position.objects.filter(symbol="BTCUSDT").first()
    return row.amount if row else D(0)


def told(execution: Execution) -> list[str]:
    return sorted(Notification.objects.filter(execution=execution).values_list("event_type", flat=True))


def opened(client, fake: FakeBinance) -> Execution:
    entry = alert(client)
    assert entry.status == "filled" and fake.position("BTCUSDT") == D("0.111") and len(fake.algo_orders) == 2
    return entry


def protective(kind: str, side: str = "SELL") -> ProtectiveOrder:
    return ProtectiveOrder.objects.get(kind=kind, side=side)


# --- exchange first ----------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_it_ends_done_naming_the_take_profit_that_closed_the_position_before_the_alert(
        client, strategy, channel, stream, django_user_model):
    opened(client, stream)
    assert stream.move_price("BTCUSDT", TAKE_PROFIT) == [protective("take_profit").client_id]
    settles(lambda: mirror() == 0 and Order.objects.filter(source=Order.Source.TAKE_PROFIT).exists())
    take_profit = Order.objects.get(source=Order.Source.TAKE_PROFIT)

    execution = alert(client, "close", price=46350)  # the strategy's exit alert, 30 ms or so behind

    assert execution.status == Execution.Status.NOTHING and not execution.warning
    assert re.fullmatch(rf"nothing to close: the take-profit 46350 \(order {take_profit.exchange_order_id}\) "
                        rf"closed the position {WHEN}", execution.reason), execution.reason
    assert Signal.objects.get(pk=execution.signal_id).status == Signal.Status.DONE
    assert told(execution) == [] and not Notification.objects.filter(event_type__in=["failure", "refusal"]).exists()
    assert len(stream.requests_to("/fapi/v1/order", "POST")) == 1  # the entry: nothing was sent for the close
    # The trade appears once, closed by its take-profit, with its P&L: (46,350 − 45,000) × 0.111.
    assert take_profit.realized_pnl == D("149.85") and take_profit.protective == protective("take_profit")
    client.force_login(django_user_model.objects.create_user("trader", password="a-trader-password"))
    page = client.get(reverse("ui:dashboard")).content.decode()
    assert 'title="Take-profit triggered at the exchange">Take-profit</span>' in page and "149.85" in page
    assert "nothing to close: the take-profit 46350" in page


@pytest.mark.django_db(transaction=True)
def test_it_ends_done_when_the_take_profit_fills_while_the_close_is_on_its_way(client, strategy, channel, stream):
    opened(client, stream)
    stream.move_price_on_next_order("BTCUSDT", TAKE_PROFIT)  # the race lost: Binance answers -2022

    execution = alert(client, "close", price=46350)

    take_profit = Order.objects.get(source=Order.Source.TAKE_PROFIT)
    assert execution.status == Execution.Status.NOTHING, execution.reason
    assert re.fullmatch(rf"nothing to close: the take-profit 46350 \(order {take_profit.exchange_order_id}\) "
                        rf"closed the position {WHEN}", execution.reason), execution.reason
    [close] = execution.orders.all()
    assert close.status == Order.Status.REJECTED and close.error_code == "-2022"
    assert close.error_message == f"nothing to reduce: {execution.reason.removeprefix('nothing to close: ')}"
    assert execution.decision["exchange_first"] == [
        {"leg": 1, "refused": True, "cause": "ours", "words": close.error_message.removeprefix("nothing to reduce: "),
         "told": True}]
    assert Signal.objects.get(pk=execution.signal_id).status == Signal.Status.DONE
    assert told(execution) == []
    assert mirror() == 0 and stream.position("BTCUSDT") == 0
    # The stop-loss, no longer needed, is cancelled under the lane, and the stream's word on it is ours.
    assert stream.algo_orders == {}
    settles(lambda: protective("stop_loss").status == "cancelled")
    settles(lambda: protective("take_profit").status == "triggered")


def test_it_reads_the_exchange_when_no_stream_reports_the_take_profit(client, strategy, binance_fake, monkeypatch):
    monkeypatch.setattr(closed_first, "STREAM_WAIT", 30.0)  # not waited for: no stream is connected
    opened(client, binance_fake)
    binance_fake.move_price("BTCUSDT", TAKE_PROFIT)  # nobody hears of it: our mirror still says long
    assert mirror() == D("0.111")

    started = time.monotonic()
    execution = alert(client, "close", price=46350)

    assert time.monotonic() - started < 5
    assert execution.status == Execution.Status.NOTHING, execution.reason
    take_profit = protective("take_profit")
    assert execution.reason == (f"nothing to close: the take-profit 46350 ({take_profit.client_id}) closed the position: "
                                "it triggered at the exchange, which has not reported its fill yet")
    assert take_profit.status == "triggered" and protective("stop_loss").status == "cancelled"
    assert binance_fake.algo_orders == {}
    position = Position.objects.get(symbol="BTCUSDT")
    assert position.amount == 0 and position.reconciled_at is not None  # as the exchange states it
    assert Signal.objects.get(pk=execution.signal_id).status == Signal.Status.DONE


def test_a_reversal_whose_close_the_take_profit_made_first_still_opens_the_other_side(client, strategy, binance_fake):
    opened(client, binance_fake)
    binance_fake.move_price("BTCUSDT", TAKE_PROFIT)

    execution = alert(client, "sell", price=46350)  # reverse: close the long (already closed), open a short

    assert execution.status == Execution.Status.FILLED, execution.reason
    assert execution.reason.startswith("reverse to short ") and "; leg 1 (close) found nothing to reduce: the " \
        f"take-profit 46350 ({protective('take_profit').client_id}) closed the position" in execution.reason
    short = binance_fake.position("BTCUSDT")
    assert short < 0 and mirror() == short  # our records match the exchange
    assert sorted((o["orderType"], o["side"]) for o in binance_fake.algo_orders.values()) == [
        ("STOP_MARKET", "BUY"), ("TAKE_PROFIT_MARKET", "BUY")]  # the short is protected


def test_a_resumed_reversal_whose_close_the_take_profit_made_first_still_ends_filled(
        client, strategy, binance_fake, monkeypatch):
    """The chaos proof's finding: the worker dies after recording the reversal's orders; meanwhile the
    take-profit closes the long. The resumed attempt's close finds nothing to reduce, its open fills,
    and the execution says filled, not partial (the note was written on another copy of the row)."""
    from trading import sending

    opened(client, binance_fake)
    real = sending.leg_execute

    def die_once(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(sending, "leg_execute", real)
        raise SystemExit("killed after the orders were recorded, before any was sent")

    monkeypatch.setattr(sending, "leg_execute", die_once)
    with pytest.raises(SystemExit):
        alert(client, "sell", price=46350)
    binance_fake.move_price("BTCUSDT", TAKE_PROFIT)  # the take-profit closes the long meanwhile
    signal = Signal.objects.get(action="sell")
    SymbolLane.objects.update(holder="", lease_until=None)  # recovery frees the dead holder's lane
    execute_signal(signal.pk, "BTCUSDT")

    execution = Execution.objects.get(signal=signal)
    assert execution.attempts == 2
    assert execution.status == Execution.Status.FILLED, execution.reason
    assert "; leg 1 (close) found nothing to reduce: the take-profit 46350" in execution.reason
    assert binance_fake.position("BTCUSDT") < 0 and mirror() == binance_fake.position("BTCUSDT")


# --- outside this system ------------------------------------------------------------------------------
def test_a_position_closed_by_hand_then_a_close_alert_is_a_warning_and_our_records_match(
        client, strategy, channel, binance_fake, trader_page):
    opened(client, binance_fake)
    binance_fake.manual_order("BTCUSDT", "SELL", "0.111")  # in Binance's app; no stream to tell us

    execution = alert(client, "close")

    assert execution.status == Execution.Status.NOTHING and execution.warning
    assert execution.reason == ("warning: nothing to close: the position was closed outside this system: no order of "
                                "ours closed it and the exchange reported no trade; our records now match the exchange")
    assert Signal.objects.get(pk=execution.signal_id).status == Signal.Status.DONE
    assert mirror() == 0 == binance_fake.position("BTCUSDT")
    assert binance_fake.algo_orders == {}  # its stop-loss and take-profit protect nothing now
    assert told(execution) == ["protection"]  # told once, as a warning: nobody had heard of the trade
    row = trader_page(reverse("ui:executions"))
    assert 'data-status="warning">Warning: nothing to do</span>' in row and "badge-bad" not in row
    page = trader_page(reverse("ui:execution", kwargs={"execution_id": execution.pk}))
    assert 'class="alert alert-warn">warning: nothing to close' in page


def test_a_position_closed_while_both_protective_orders_are_gone_is_a_warning_that_names_them(
        client, strategy, binance_fake):
    opened(client, binance_fake)
    binance_fake.algo_orders.clear()  # cancelled by hand
    binance_fake.manual_order("BTCUSDT", "SELL", "0.111")

    execution = alert(client, "close")

    assert execution.status == Execution.Status.NOTHING and execution.reason.startswith(
        "warning: nothing to close: the position was closed at the exchange and our stop-loss 44100 (")
    assert "are gone from there: one of them, or a trade outside this system, closed it" in execution.reason
    assert set(ProtectiveOrder.objects.values_list("status", flat=True)) == {"gone"}


@pytest.mark.django_db(transaction=True)
def test_a_trade_by_hand_seen_on_the_stream_then_a_close_alert_is_a_warning(client, strategy, channel, stream):
    opened(client, stream)
    manual = stream.manual_order("BTCUSDT", "SELL", "0.111")
    settles(lambda: mirror() == 0 and Order.objects.filter(source=Order.Source.MANUAL).exists())

    execution = alert(client, "close")

    assert execution.status == Execution.Status.NOTHING
    assert re.fullmatch(rf"warning: nothing to close: a trade placed outside this system \(by hand: order {manual}, "
                        rf"SELL 0.111 at 45000\) closed the position {WHEN}", execution.reason), execution.reason
    assert told(execution) == []  # the stream told of the trade itself


@pytest.mark.django_db(transaction=True)
def test_a_liquidation_then_a_close_alert_is_a_warning(client, strategy, stream):
    opened(client, stream)
    stream.set_price("BTCUSDT", "40000")
    stream.liquidate("BTCUSDT")
    settles(lambda: mirror() == 0 and Order.objects.filter(source=Order.Source.LIQUIDATION).exists())

    execution = alert(client, "close", price=40000)

    assert execution.status == Execution.Status.NOTHING
    assert re.fullmatch(rf"warning: nothing to close: the exchange liquidated the position \(order \d+: SELL 0.111 at "
                        rf"40000\) {WHEN}", execution.reason), execution.reason


def test_a_reduce_the_exchange_caps_records_what_was_closed_and_says_why(client, strategy, binance_fake):
    opened(client, binance_fake)
    binance_fake.manual_order("BTCUSDT", "SELL", "0.061")  # by hand, unseen: 0.050 left, our mirror says 0.111

    execution = alert(client, "close")

    [close] = execution.orders.all()
    assert close.status == Order.Status.FILLED and (close.quantity, close.executed_qty) == (D("0.111"), D("0.050"))
    assert execution.status == Execution.Status.FILLED and execution.warning
    assert execution.reason == ("warning: close long 0.111; the exchange closed 0.05 of the 0.111 asked, all that was "
                                "left: part of the position was closed outside this system: no order of ours closed it "
                                "and the exchange reported no trade; our records now match the exchange")
    assert execution.decision["exchange_first"][0]["refused"] is False
    assert mirror() == 0 == binance_fake.position("BTCUSDT") and binance_fake.algo_orders == {}


# --- alert first, and real refusals ------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_when_the_close_alert_comes_first_it_fills_and_the_cancels_the_stream_reports_are_ours(
        client, strategy, channel, stream, caplog):
    caplog.set_level("INFO", logger="trading.live")
    opened(client, stream)

    execution = alert(client, "close")

    assert execution.status == Execution.Status.FILLED and execution.reason == "close long 0.111"
    assert stream.algo_orders == {} and mirror() == 0
    # Whichever came first, the stream's cancel events or our DELETEs' answers: once the stream has
    # applied everything pushed before a later trade, no order of ours reads as gone.
    stream.manual_order("ETHUSDT", "BUY", "0.010")
    settles(lambda: Order.objects.filter(symbol="ETHUSDT").exists())
    assert " gone" not in caplog.text
    assert set(ProtectiveOrder.objects.values_list("status", flat=True)) == {"cancelled"}
    assert all(order.cancel_requested_at for order in ProtectiveOrder.objects.all())
    assert told(execution) == ["fill"]


def test_a_cancel_event_that_arrives_before_the_answer_is_attributed_to_us(strategy):
    entry = Execution.objects.create(signal=Signal.objects.create(
        action="buy", symbol="BTCUSDT", strategy=strategy.name, preference=strategy, received_at=timezone.now(),
        idempotency_key="cancel-race"), strategy=strategy.name, symbol="BTCUSDT", exchange="binance",
        received_at=timezone.now())
    stop = ProtectiveOrder.objects.create(execution=entry, symbol="BTCUSDT", kind="stop_loss", side="SELL",
                                          trigger_price=D(STOP_LOSS), client_id="pt-1-2-s", status="active")
    said: list[str] = []

    def cancel_protective(symbol: str, client_id: str) -> None:  # the event overtakes the DELETE's answer
        said.append(protective_update_apply(ProtectiveUpdate(symbol=symbol, client_id=client_id,
                                                             status=ProtectiveStatus.CANCELLED, order_id="",
                                                             time=timezone.now())))

    assert position_settle("BTCUSDT", SimpleNamespace(cancel_protective=cancel_protective)) == ""  # type: ignore[arg-type]
    assert said == ["Stop-loss BTCUSDT @ 44100 (active) cancelled by us"]
    stop.refresh_from_db()
    assert stop.status == "cancelled" and stop.cancel_requested_at is not None


def test_a_cancel_the_exchange_reports_without_ours_is_still_gone(strategy):
    entry = Execution.objects.create(signal=Signal.objects.create(
        action="buy", symbol="BTCUSDT", strategy=strategy.name, preference=strategy, received_at=timezone.now(),
        idempotency_key="by-hand"), strategy=strategy.name, symbol="BTCUSDT", exchange="binance",
        received_at=timezone.now())
    ProtectiveOrder.objects.create(execution=entry, symbol="BTCUSDT", kind="stop_loss", side="SELL",
                                   trigger_price=D(STOP_LOSS), client_id="pt-1-2-s", status="active")
    update = ProtectiveUpdate(symbol="BTCUSDT", client_id="pt-1-2-s", status=ProtectiveStatus.CANCELLED, order_id="",
                              time=timezone.now())
    assert protective_update_apply(update) == "Stop-loss BTCUSDT @ 44100 (active) gone"


def test_a_close_the_exchange_refuses_for_another_reason_stays_a_failure(client, strategy, channel, binance_fake):
    opened(client, binance_fake)
    binance_fake.fail_next("/fapi/v1/order", status=400, code=-1111,
                           msg="Precision is over the maximum defined for this asset.")

    execution = alert(client, "close")

    assert execution.status == Execution.Status.REJECTED and not execution.warning
    assert Signal.objects.get(pk=execution.signal_id).status == Signal.Status.FAILED
    assert "exchange_first" not in execution.decision and mirror() == D("0.111")
    assert told(execution) == ["refusal"]


# --- the paper exchange ---------------------------------------------------------------------------------
@pytest.fixture
def paper(settings):
    settings.EXCHANGE = "paper"
    reset_exchange()
    yield get_exchange()
    reset_exchange()


def queued(strategy: StrategyPreference, action: str, price: str) -> Signal:
    now = timezone.now()
    return Signal.objects.create(action=action, symbol="BTCUSDT", strategy=strategy.name, preference=strategy,
                                 price=D(price), status="queued", received_at=now, queued_at=now,
                                 idempotency_key=f"paper:{next(_seq)}")


def test_the_paper_exchange_triggers_the_take_profit_first_when_the_close_alert_comes_at_its_price(strategy, paper):
    execute_signal(queued(strategy, "buy", "45000").pk)
    signal = queued(strategy, "close", "46350")  # the paper market sees 46,350 before it fills the close

    execute_signal(signal.pk)

    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.NOTHING, execution.reason
    assert execution.reason.startswith(f"nothing to close: the take-profit 46350 ({protective('take_profit').client_id})")
    assert PaperPosition.objects.get(symbol="BTCUSDT").amount == 0 and mirror() == 0
    assert dict(PaperProtective.objects.values_list("kind", "status")) == {"take_profit": "triggered",
                                                                          "stop_loss": "cancelled"}


def test_on_the_paper_exchange_a_close_alert_below_the_take_profit_fills_and_cancels_both(strategy, paper):
    execute_signal(queued(strategy, "buy", "45000").pk)
    signal = queued(strategy, "close", "46349.9")  # a tick short of the target: the alert is first

    execute_signal(signal.pk)

    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.FILLED and execution.reason == "close long 0.111"
    assert set(PaperProtective.objects.values_list("status", flat=True)) == {"cancelled"}
    assert all(order.cancel_requested_at for order in ProtectiveOrder.objects.all())  # recorded before the request


# --- the pieces --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("seconds", "said"), [
    (0.0304, "30 ms"), (0.999, "999 ms"), (1.0, "1.0 s"), (119.9, "119.9 s"), (120, "2 min"), (7199, "119 min"),
    (7200, "2 h"), (48 * 3600 - 1, "47 h"), (48 * 3600, "2 days"),
])
def test_it_says_a_time_span_as_people_do(seconds, said):
    assert gap(seconds) == said


def test_it_says_whether_the_fill_came_before_or_after_the_alert_and_its_day_when_another():
    alert_at = datetime(2026, 12, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert closed_first._when(alert_at, alert_at) == "at 12:00:00.123 UTC, 0 ms before this alert"
    later = alert_at + timedelta(milliseconds=1)
    assert closed_first._when(later, alert_at).endswith("1 ms after this alert arrived, before our order reached the "
                                                        "exchange")
    assert closed_first._when(alert_at - timedelta(hours=13), alert_at).startswith("at 2026-11-30 23:00:00.123 UTC")


@pytest.mark.parametrize(("age", "detail", "connected"), [
    (59, "connected since 12:00:00", True), (61, "connected since 12:00:00", False), (1, "down: timeout", False),
])
def test_it_counts_on_the_stream_only_while_it_is_connected_and_beating(db, age, detail, connected):
    WorkerHeartbeat.objects.create(name=HEARTBEAT, beat_at=timezone.now() - timedelta(seconds=age), detail=detail)
    assert stream_connected() is connected


def test_only_a_reported_close_on_the_closing_side_and_after_our_last_fill_explains_it(db):
    now = timezone.now()

    def fill(source: str, side: str, minutes: int, purpose: str = "close") -> Order:
        return Order.objects.create(source=source, client_order_id=f"c{next(_seq)}", exchange_order_id=str(next(_seq)),
                                    symbol="BTCUSDT", side=side, quantity=D("0.1"), executed_qty=D("0.1"),
                                    avg_price=D(45000), status="FILLED", purpose=purpose,
                                    created_at=now - timedelta(minutes=minutes), sent_at=now - timedelta(minutes=minutes))

    fill(Order.Source.SIGNAL, "BUY", 10, "open")
    assert recorded_close("BTCUSDT", side="SELL", alert_at=now) is None  # our own entry is the latest
    manual = fill(Order.Source.MANUAL, "BUY", 5, "add")
    assert recorded_close("BTCUSDT", side="SELL", alert_at=now) is None  # by hand, but it added
    assert recorded_close("BTCUSDT", alert_at=now) is None  # nor is an add a close
    assert recorded_close("BTCUSDT", side="BUY", alert_at=now).cause == Cause.OUTSIDE
    manual.delete()
    fill(Order.Source.LIQUIDATION, "SELL", 1)
    first = recorded_close("BTCUSDT", side="SELL", alert_at=now)
    assert first.cause == Cause.EXCHANGE and first.warning and first.words.endswith("60.0 s before this alert")


def test_a_warning_nobody_has_heard_of_is_told_as_a_protection_alarm(strategy, channel):
    signal = Signal.objects.create(action="close", symbol="BTCUSDT", strategy=strategy.name, preference=strategy,
                                   received_at=timezone.now(), idempotency_key="told")
    execution = Execution.objects.create(signal=signal, strategy=strategy.name, symbol="BTCUSDT", exchange="paper",
                                         received_at=signal.received_at, status="nothing",
                                         reason="warning: nothing to close: …")
    execution_finished(execution.pk, "nothing")
    assert told(execution) == []
    execution_finished(execution.pk, "nothing", warning=True)
    assert told(execution) == ["protection"]


@pytest.fixture
def trader_page(client, django_user_model) -> Callable[[str], str]:
    client.force_login(django_user_model.objects.create_user("trader", password="a-trader-password"))
    return lambda path: client.get(path).content.decode()
