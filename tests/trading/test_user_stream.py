"""Live fills from the exchange (issue #10): the user data stream, served by the fake over a real
local websocket, applied to Order and Position within a second — protective fills, liquidations,
trades placed by hand, partial fills, funding — reconnecting when dropped or when the listenKey
expires, and never applying an event twice."""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from analytics.models import LedgerEntry
from notifications.models import Channel, Notification
from tests.fakes.binance_server import API_SECRET, FakeBinance
from tests.support.cluster import worker_env
from tests.support.queue import queued_jobs, run_queued_jobs
from tests.support.stream import eventually, stream_running
from tests.support.webhook import alert, strategy_create
from trading.exchange import binance_stream, get_exchange, reset_exchange
from trading.live import HEARTBEAT, stream_run
from trading.models import Order, Position, ProtectiveOrder, WorkerHeartbeat
from trading.webhook import RATE_LIMITER

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stream_settings(binance_settings, binance_fake, monkeypatch):
    binance_settings.BINANCE_STREAM_URL = binance_fake.ws_url
    monkeypatch.setattr(binance_stream, "RECV_TIMEOUT", 0.2)  # quick to notice `stop` in teardown
    reset_exchange()
    return binance_settings


@pytest.fixture
def stream(stream_settings, binance_fake) -> Iterator[FakeBinance]:
    """`stream_run` in a thread, as `manage.py userstream` runs it, connected to the fake."""
    with stream_running(binance_fake):
        yield binance_fake


@pytest.fixture
def client(committed_client):
    RATE_LIMITER.reset()
    return committed_client


def position(symbol: str = "BTCUSDT") -> Decimal:
    row = Position.objects.filter(symbol=symbol).first()
    return row.amount if row else D(0)


def test_a_triggered_stop_loss_closes_our_position_and_cancels_the_take_profit(client, stream):
    strategy_create(stop_loss=D(2), take_profit=D(3))
    alert(client)
    held = position()
    assert held > 0
    stop_loss = ProtectiveOrder.objects.get(kind="stop_loss", status="active")
    run_queued_jobs()  # nothing the stream queued for our own entry
    stream.trigger_protective(stop_loss.client_id)

    eventually(lambda: position() == 0)
    fill = Order.objects.get(source=Order.Source.STOP_LOSS)
    assert fill.status == Order.Status.FILLED and fill.executed_qty == held and fill.side == "SELL"
    assert fill.execution is None and fill.protective == stop_loss and fill.avg_price == D("44100.0")
    assert fill.realized_pnl == (D("44100.0") - D(45000)) * held
    eventually(lambda: ProtectiveOrder.objects.get(pk=stop_loss.pk).status == "triggered")
    # The take-profit is left over at the exchange: the queued job cancels it under the symbol's lane.
    eventually(lambda: any(job["func"] == "trading.tasks.settle_protection" for job in queued_jobs()))
    run_queued_jobs()
    assert stream.algo_orders == {}
    assert ProtectiveOrder.objects.get(kind="take_profit").status == "cancelled"


def test_a_liquidation_appears_within_a_second(client, stream):
    Channel.objects.create(name="desk", kind="email", email_to="desk@example.com", on_fill=False)
    strategy_create()
    alert(client)
    held = position()
    stream.set_price("BTCUSDT", "40000")
    stream.liquidate("BTCUSDT")
    eventually(lambda: position() == 0)
    liquidation = Order.objects.get(source=Order.Source.LIQUIDATION)
    assert liquidation.client_order_id.startswith("autoclose-") and liquidation.executed_qty == held
    assert liquidation.status == Order.Status.FILLED and liquidation.purpose == "close"
    assert liquidation.commission == held * D(40000) * D("0.0005")
    eventually(lambda: Notification.objects.exists())  # queued just after the fill is committed
    alarm = Notification.objects.get()  # told as an alarm, to the channels that want those
    assert alarm.event_type == "protection" and alarm.text.startswith("Liquidation by the exchange: SELL 0.111 BTCUSDT")


def test_a_manual_close_in_binances_app_appears_within_a_second(client, stream):
    strategy_create()
    alert(client)
    held = position()
    stream.manual_order("BTCUSDT", "SELL", str(held))
    eventually(lambda: position() == 0)
    manual = Order.objects.get(source=Order.Source.MANUAL)
    assert manual.client_order_id.startswith("web_") and manual.purpose == "close" and manual.status == "FILLED"
    assert Order.objects.filter(source=Order.Source.SIGNAL).count() == 1  # our entry, recorded once


def test_partial_fills_move_the_position_part_by_part(stream):
    stream.manual_order("ETHUSDT", "BUY", "0.300", parts=3)
    eventually(lambda: position("ETHUSDT") == D("0.3"))
    order = Order.objects.get(symbol="ETHUSDT")
    assert order.executed_qty == order.applied_qty == D("0.3") and order.status == "FILLED"
    assert order.purpose == "open"


def test_a_replayed_event_changes_nothing(stream):
    stream.manual_order("BTCUSDT", "BUY", "0.010", parts=2)
    eventually(lambda: position() == D("0.01"))
    before = list(Order.objects.values("executed_qty", "applied_qty", "status", "commission", "realized_pnl"))
    trades = [event for event in stream.pushed if event["e"] == "ORDER_TRADE_UPDATE"]
    for event in trades:  # every update again, and the first part last: the oldest word arrives late
        stream.replay(event)
    stream.replay(trades[1])
    time.sleep(0.5)
    assert position() == D("0.01") and Order.objects.count() == 1
    assert list(Order.objects.values("executed_qty", "applied_qty", "status", "commission", "realized_pnl")) == before


def test_our_own_fill_is_applied_once_whichever_of_answer_and_event_comes_first(client, stream):
    strategy_create()
    execution = alert(client)
    order = execution.orders.get()
    time.sleep(0.3)  # the stream's events for the same fill arrive too
    assert position() == order.executed_qty == order.applied_qty
    assert Order.objects.count() == 1 and not Order.objects.exclude(source=Order.Source.SIGNAL).exists()


def test_a_dropped_stream_reconnects_and_catches_up_on_what_it_missed(stream):
    stream.drop_streams(refuse=True)
    # While no stream is open the exchange acts: the event is lost with the connection.
    stream.manual_order("BTCUSDT", "BUY", "0.020")
    time.sleep(0.3)
    assert position() == 0
    stream.streams_refused = False
    stream.wait_for_stream(connections=2, timeout=5)
    eventually(lambda: position() == D("0.02"), within=2)  # reconciled on reconnecting
    stream.manual_order("BTCUSDT", "SELL", "0.020")
    eventually(lambda: position() == 0)


def test_an_expired_listen_key_is_made_again(stream):
    stream.expire_listen_keys()
    stream.wait_for_stream(connections=2)
    assert len(stream.requests_to("/fapi/v1/listenKey", "POST")) == 2
    stream.manual_order("BTCUSDT", "BUY", "0.010")
    eventually(lambda: position() == D("0.01"))


def test_a_keep_alive_refused_with_1125_opens_a_new_stream(stream_settings, binance_fake, monkeypatch):
    stop = threading.Event()
    stream = get_exchange().user_stream()
    assert stream is not None
    stream.keepalive_every = 0.3
    events = stream.events(stop)
    assert type(next(events)).__name__ == "StreamConnected"
    binance_fake.listen_keys.clear()  # gone at Binance, silently
    down = next(event for event in events if type(event).__name__ == "StreamDown")
    assert "listenKey" in down.reason
    assert type(next(events)).__name__ == "StreamConnected"
    assert binance_fake.requests_to("/fapi/v1/listenKey", "PUT")
    stop.set()
    events.close()


def test_funding_brings_the_ledger_import_forward(stream):
    stream.set_position("BTCUSDT", "0.010", "45000")
    stream.add_funding("BTCUSDT", "-0.25")
    eventually(lambda: any(job["func"] == "analytics.tasks.import_ledger" for job in queued_jobs()))
    run_queued_jobs()
    assert LedgerEntry.objects.get(kind="FUNDING_FEE").amount == D("-0.25")


def test_the_stream_process_reports_itself_in_health(stream, admin_client):
    detail = admin_client.get("/health").json()
    assert detail["user_stream"]["ok"] is True, detail
    assert detail["user_stream"]["detail"].startswith("connected since")
    stream.drop_streams()
    eventually(lambda: not admin_client.get("/health").json()["user_stream"]["ok"]
               or stream.stream_connections > 1, within=3)


@pytest.mark.slow
def test_manage_py_userstream_applies_a_liquidation_within_a_second(stream_settings, binance_fake, live_server):
    """The real entry point: the process `make run` starts (and production runs) beside the worker."""
    Position.objects.create(symbol="BTCUSDT", amount=D("0.010"), entry_price=D(45000))
    binance_fake.set_position("BTCUSDT", "0.010", "45000")
    env = worker_env(binance_fake, BINANCE_STREAM_URL=binance_fake.ws_url, LOG_LEVEL="info")
    process = subprocess.Popen([sys.executable, "manage.py", "userstream"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        binance_fake.wait_for_stream(timeout=20)
        time.sleep(0.3)  # its reconciliation on connecting has run
        binance_fake.liquidate("BTCUSDT")
        took = eventually(lambda: position() == 0)
        assert Order.objects.get(source=Order.Source.LIQUIDATION).status == "FILLED"
        assert took < 1.0
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0].decode()
    assert process.returncode == 0, output
    assert API_SECRET not in output



@pytest.mark.slow
def test_make_runs_supervisor_starts_the_stream_with_a_real_exchange(stream_settings, binance_fake, live_server,
                                                                     django_user_model):
    """`make run` (manage.py serve) with EXCHANGE=binance runs web, worker and the user data stream
    together, and stops all three on SIGTERM."""
    import signal
    import socket

    django_user_model.objects.create_superuser("admin", "", "x")  # so serve writes no password file
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = worker_env(binance_fake, BINANCE_STREAM_URL=binance_fake.ws_url, PORT=str(port), WEB_CONCURRENCY="1")
    process = subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        binance_fake.wait_for_stream(timeout=60)
        time.sleep(0.3)
        binance_fake.manual_order("BTCUSDT", "BUY", "0.010")
        eventually(lambda: position() == D("0.01"))
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    binance_fake.wait_for_no_stream(timeout=5)


def test_the_paper_exchange_reports_a_triggered_stop_within_a_second(settings):
    """`make run`'s paper exchange triggers protective orders itself; its stream reports them too."""
    from trading.exchange import get_exchange
    from trading.models import Signal
    from trading.tasks import execute_signal

    settings.EXCHANGE = "paper"
    reset_exchange()
    strategy = strategy_create(stop_loss=D(2), take_profit=D(3))
    now = datetime.now(UTC)
    signal = Signal.objects.create(action="buy", symbol="BTCUSDT", strategy=strategy.name, preference=strategy,
                                   price=D(45000), status="queued", received_at=now, queued_at=now, idempotency_key="p1")
    execute_signal(signal.pk)
    held = position()
    assert held > 0
    stop = threading.Event()
    thread = threading.Thread(target=lambda: (stream_run(get_exchange(), stop), connection.close()), daemon=True)
    thread.start()
    try:
        get_exchange().observe_price("BTCUSDT", D("44000"))  # crosses the stop at 44,100
        eventually(lambda: Order.objects.filter(source=Order.Source.STOP_LOSS).exists())
        assert position() == 0  # once: whether the stream's first reconciliation read it before or after
        fill = Order.objects.get(source=Order.Source.STOP_LOSS)
        assert fill.executed_qty == held and fill.avg_price == D(44000) and fill.protective.kind == "stop_loss"
        assert ProtectiveOrder.objects.get(kind="stop_loss").status == "triggered"
    finally:
        stop.set()
        thread.join(timeout=5)
    reset_exchange()


def test_a_fill_already_in_a_reconciled_position_is_recorded_without_moving_it_again(stream_settings, binance_fake):
    """The race between reconciliation and a late event: the exchange filled, the reconciliation read
    the new position, then the fill's event arrives. It must not be counted twice."""
    from django.utils import timezone

    from trading.exchange.binance_stream import parse_event
    from trading.live import event_apply
    from trading.upkeep import positions_reconcile

    Position.objects.create(symbol="BTCUSDT", amount=D("0.02"), entry_price=D(45000))
    binance_fake.set_position("BTCUSDT", "0.020", "45000")
    binance_fake.manual_order("BTCUSDT", "SELL", "0.020")  # no stream open: the events wait in `pushed`
    exchange = get_exchange()
    positions_reconcile(exchange, timezone.now())
    assert position() == 0
    for payload in binance_fake.pushed:
        event = parse_event(payload)
        if event is not None:
            event_apply(event, exchange)
    assert position() == 0  # not -0.02
    manual = Order.objects.get(source=Order.Source.MANUAL)
    assert manual.status == "FILLED" and manual.applied_qty == D("0.02")
    assert manual.realized_pnl == D(0) and manual.commission == D("0.02") * D(45000) * D("0.0005")


def test_a_fill_reported_after_its_execution_gave_up_is_said_on_the_execution():
    """The worker gave up on an order whose outcome it could not learn; the stream then reports it
    filled. The position moves, and the execution says so (as the sweep's lookup would)."""
    from tests.ui.records import make_execution
    from trading.exchange import FillCause, OrderState, OrderUpdate
    from trading.live import order_update_apply

    execution = make_execution(1, status="failed", reason="gave up: the outcome of order ui-1-1 is still unknown")
    Order.objects.filter(execution=execution).update(status=Order.Status.UNKNOWN, executed_qty=0, avg_price=None)
    update = OrderUpdate(symbol="BTCUSDT", client_order_id="ui-1-1", exchange_order_id="77", side="BUY", position_side="BOTH",
                         order_type="MARKET", quantity=D("0.111"), state=OrderState.FILLED, executed_qty=D("0.111"),
                         avg_price=D("45000"), last_qty=D("0.111"), last_price=D("45000"), commission=D("2.4975"),
                         commission_asset="USDT", realized_pnl=D(0), trade_id="1", reduce_only=False,
                         cause=FillCause.ORDER, time=datetime.now(UTC))
    order_update_apply(update)
    order_update_apply(update)  # replayed: said once
    execution.refresh_from_db()
    assert execution.reason.endswith("; order ui-1-1 later found FILLED") and execution.reason.count("later found") == 1
    assert position() == D("0.111")


def test_a_worker_recording_its_answer_after_a_reconciliation_read_the_fill_does_not_count_it_twice(binance_settings):
    """The same race on the worker's side: our order filled, a reconciliation read the new position,
    then the worker records the exchange's answer. The answer's own time says the fill is in it."""
    from django.utils import timezone

    from tests.ui.records import make_execution
    from trading import recording
    from trading.exchange import OrderRequest
    from trading.upkeep import positions_reconcile

    order = make_execution(1, status="running", exchange="binance").orders.get()
    Order.objects.filter(pk=order.pk).update(status=Order.Status.SENT, executed_qty=0, avg_price=None)
    exchange = get_exchange()
    request = OrderRequest(symbol="BTCUSDT", side="BUY", quantity=D("0.111"), client_order_id=order.client_order_id)
    result = exchange.place_market_order(request, stamp=exchange.order_stamp())
    positions_reconcile(exchange, timezone.now())  # the minute job, between the fill and its recording
    assert position() == D("0.111")
    recording.order_record(Order.objects.get(pk=order.pk), result)
    assert position() == D("0.111")  # not 0.222
    assert Order.objects.get(pk=order.pk).applied_qty == D("0.111")


# --- leverage changed at the exchange (issue #17) -----------------------------------------------------
def test_a_leverage_changed_in_binances_app_is_noticed_from_the_stream_and_the_next_order_restores_it(
        client, stream, settings):
    from trading.models import SymbolSetting

    settings.EXCHANGE_SETTINGS_MAX_AGE = 3600  # no stale read: only the stream can tell
    strategy_create()
    alert(client)
    account = get_exchange().account_id
    eventually(lambda: SymbolSetting.objects.get(account=account, symbol="BTCUSDT").leverage == 5, within=3)
    reads = len(stream.requests_to("/fapi/v1/symbolConfig"))

    stream.change_leverage_in_app("BTCUSDT", 25)
    eventually(lambda: SymbolSetting.objects.get(account=account, symbol="BTCUSDT").leverage == 25, within=3)
    eventually(lambda: Position.objects.get(symbol="BTCUSDT").leverage == 25)  # in force on the open position too

    execution = alert(client, price=45001)
    assert execution.decision["account_settings"] == ["leverage at the exchange was 25, set to 5 before the order"]
    assert stream.order_leverage[execution.orders.get().client_order_id] == 5
    assert len(stream.requests_to("/fapi/v1/symbolConfig")) == reads  # the stream told: nothing read
    eventually(lambda: Position.objects.get(symbol="BTCUSDT").leverage == 5, within=3)


def test_leverage_and_margin_type_are_read_again_when_the_stream_reopens(stream):
    from trading.models import SymbolSetting

    strategy_create()
    stream.drop_streams(refuse=True)
    stream.change_margin_type_in_app("BTCUSDT", "ISOLATED")  # never pushed
    stream.streams_refused = False
    stream.wait_for_stream(connections=2, timeout=5)
    eventually(lambda: SymbolSetting.objects.filter(symbol="BTCUSDT", margin_type="isolated").exists(), within=2)


def test_a_reopened_stream_still_reconciles_when_the_settings_cannot_be_read(binance_settings, binance_fake):
    from trading.exchange import StreamConnected
    from trading.live import event_apply

    strategy_create()
    binance_fake.set_position("BTCUSDT", "0.010", "45000")
    binance_fake.fail_next("/fapi/v1/symbolConfig", method="GET", status=404, code=-5000, msg="Not served.")
    binance_fake.fail_next("/fapi/v1/symbolConfig", method="GET", status=404, code=-5000, msg="Not served.")
    said = event_apply(StreamConnected(datetime.now(UTC)), get_exchange())
    assert said.startswith("connected; positions reconciled") and "leverage and margin types could not be read" in said
    assert position() == D("0.010")


# --- messages Binance would never send: skipped, and the stream goes on --------------------------------
SECRET = "leaky-listen-key-0123456789abcdef"  # in every bad message: the log must not repeat it
ORDER = {"s": "BTCUSDT", "c": SECRET, "S": "BUY", "o": "MARKET", "q": "0.010", "X": "FILLED", "i": 1, "l": "0.010",
         "z": "0.010", "L": "45000", "ap": "45000", "n": "0.2", "N": "USDT", "T": 1700000000000, "t": 1, "ps": "BOTH"}
MALFORMED = {
    "not JSON": "not json " + SECRET,
    "NaN amount": json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {**ORDER, "z": "NaN"}}),
    "Infinity amount": json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {**ORDER, "q": "Infinity"}}),
    "bare NaN": '{"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": NaN}], '
                f'"P": [], "k": "{SECRET}"' + "}}",
    "huge number": json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {**ORDER, "z": "1e400"}}),
    "time out of range": json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1, "T": 1, "o": {**ORDER, "T": 10**20}}),
    "negative time": json.dumps({"e": "ALGO_UPDATE", "E": -5, "T": -10**15, "o": {"s": "BTCUSDT", "caid": SECRET,
                                                                               "X": "NEW"}}),
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "huge message": json.dumps({"e": "ACCOUNT_UPDATE", "pad": SECRET * 40_000}),
    "array": json.dumps([SECRET]),
    "string": json.dumps(SECRET),
    "null": "null",
    "number": "42",
    "missing keys": json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1, "k": SECRET}),
    "wrong types": json.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": [SECRET]}),
    "leverage not a number": json.dumps({"e": "ACCOUNT_CONFIG_UPDATE", "E": 1, "ac": {"s": "BTCUSDT", "l": SECRET}}),
    "leverage out of range": json.dumps({"e": "ACCOUNT_CONFIG_UPDATE", "E": 1, "ac": {"s": "BTCUSDT", "l": 100000}}),
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
def test_the_parser_refuses_a_malformed_message_without_quoting_it(frame):
    with pytest.raises(binance_stream.MalformedMessage) as refused:
        binance_stream.parse_message(frame)
    assert SECRET not in str(refused.value) and "BTCUSDT" not in str(refused.value)


def test_the_parser_reads_a_leverage_change_and_ignores_a_multi_assets_one():
    update = binance_stream.parse_message(json.dumps(
        {"e": "ACCOUNT_CONFIG_UPDATE", "E": 1611646737479, "T": 1611646737476, "ac": {"s": "BTCUSDT", "l": 25}}))
    assert (update.symbol, update.leverage, update.time.year) == ("BTCUSDT", 25, 2021)
    assert binance_stream.parse_message('{"e": "ACCOUNT_CONFIG_UPDATE", "E": 1, "T": 1, "ai": {"j": true}}') is None


def test_the_stream_skips_every_malformed_message_and_keeps_applying_events(stream, caplog):
    caplog.set_level("DEBUG")
    for frame in MALFORMED.values():
        stream.push_raw(frame)
    stream.manual_order("BTCUSDT", "BUY", "0.010")
    eventually(lambda: position() == D("0.01"), within=3)
    assert stream.stream_connections == 1  # the same connection all along
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("user stream: skipped a message")]
    assert len(skipped) == len(MALFORMED)
    assert SECRET not in caplog.text
    assert WorkerHeartbeat.objects.get(name=HEARTBEAT).detail.startswith("connected")
