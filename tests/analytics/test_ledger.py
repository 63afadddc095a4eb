"""The exchange's ledger imported: idempotent, paged, attributed, and reconciled with the wallet to the cent."""

import itertools
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone
from django_q.models import Schedule

from analytics.ledger import ledger_as_of, ledger_import, order_fills_record
from analytics.models import LedgerEntry
from analytics.tasks import import_ledger, import_ledger_after_fills
from preferences.models import StrategyPreference
from trading.exchange import IncomeKind, OrderRequest, OrderUpdate, get_exchange, reset_exchange
from trading.models import Order, PaperAccount, PaperOrder, Signal
from trading.tasks import execute_signal

pytestmark = pytest.mark.django_db

D = Decimal
CENT = D("0.01")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_keys = itertools.count(1)


def strategy(name="ALSAPRO 1", products=("BTCUSDT", "ETHUSDT")) -> StrategyPreference:
    return StrategyPreference.objects.create(name=name, products=list(products), leverage=5, allocation_pct=D(10))


def trade(preference, action="buy", *, symbol="BTCUSDT", price="45000") -> Order:
    """A signal executed by the worker, as in production; its (last) order."""
    now = timezone.now()
    signal = Signal.objects.create(
        action=action, symbol=symbol, strategy=preference.name, preference=preference, price=D(price), sender_time=now,
        status=Signal.Status.QUEUED, received_at=now, queued_at=now, idempotency_key=f"ledger:{next(_keys)}",
    )
    execute_signal(signal.pk)
    order = Order.objects.filter(execution__signal=signal).order_by("-leg").first()
    assert order is not None and order.status == Order.Status.FILLED, Signal.objects.get(pk=signal.pk).reason
    return order


def ledger_sum(**filters) -> Decimal:
    return LedgerEntry.objects.filter(**filters).aggregate(total=Sum("amount"))["total"] or D(0)


# --- Binance, over HTTP against the fake -------------------------------------------------------------
def test_it_imports_nothing_the_second_time(binance_fake, binance_exchange):
    ours = strategy()
    trade(ours)
    binance_fake.set_price("BTCUSDT", "46000")
    trade(ours, "close", price="46000")
    assert ledger_import(binance_exchange) == 3  # commission, commission and realized P&L
    assert ledger_import(binance_exchange) == 0
    assert LedgerEntry.objects.count() == len(binance_fake.income) == 3
    kinds = sorted(LedgerEntry.objects.values_list("kind", flat=True))
    assert kinds == ["COMMISSION", "COMMISSION", "REALIZED_PNL"]


def test_it_resumes_a_little_before_the_newest_line_held(binance_fake, binance_exchange):
    trade(strategy())
    ledger_import(binance_exchange)
    newest = LedgerEntry.objects.latest("time").time
    ledger_import(binance_exchange)
    start = int(binance_fake.requests_to("/fapi/v1/income")[-1].params["startTime"])
    assert start == (newest - timedelta(minutes=5) - EPOCH) // timedelta(milliseconds=1)


def test_it_pages_through_more_than_one_page(binance_fake, binance_exchange):
    ours = strategy()
    for price, exit_price in (("45000", "45100"), ("45200", "45150"), ("45300", "45400")):
        binance_fake.set_price("BTCUSDT", price)
        trade(ours, "buy", price=price)
        binance_fake.set_price("BTCUSDT", exit_price)
        trade(ours, "close", price=exit_price)
    lines = len(binance_fake.income)
    assert lines >= 9
    assert ledger_import(binance_exchange, limit=2) == lines
    assert len(binance_fake.requests_to("/fapi/v1/income")) > lines // 2
    assert ledger_import(binance_exchange, limit=2) == 0


def test_it_reads_the_lines_of_one_fill_across_a_page_boundary(binance_fake, binance_exchange):
    at = binance_fake.server_ms() - 1000
    binance_fake._add_income("BTCUSDT", "COMMISSION", D("-1"), at - 5, trade_id="1")
    binance_fake._add_income("BTCUSDT", "REALIZED_PNL", D("10"), at, trade_id="2")
    binance_fake._add_income("BTCUSDT", "COMMISSION", D("-2"), at, trade_id="2")  # same millisecond, next page
    assert ledger_import(binance_exchange, limit=2) == 3
    assert ledger_sum() == D("7")


def test_it_imports_a_funding_fee_and_gives_it_to_the_symbols_only_strategy(binance_fake, binance_exchange):
    trade(strategy())
    binance_fake.add_funding("BTCUSDT", "-1.2345")
    ledger_import(binance_exchange)
    fee = LedgerEntry.objects.get(kind=LedgerEntry.Kind.FUNDING_FEE)
    assert (fee.symbol, fee.amount, fee.strategy, fee.order) == ("BTCUSDT", D("-1.2345"), "ALSAPRO 1", None)


def test_it_leaves_funding_unattributed_when_two_strategies_traded_the_symbol(binance_fake, binance_exchange):
    trade(strategy("A"))
    trade(strategy("B"))
    binance_fake.add_funding("BTCUSDT", "-2")
    ledger_import(binance_exchange)
    assert LedgerEntry.objects.get(kind=LedgerEntry.Kind.FUNDING_FEE).strategy == ""


def test_it_attributes_each_fill_to_the_strategy_of_its_order(binance_fake, binance_exchange):
    first, second = strategy("A"), strategy("B")
    a_order = trade(first)
    b_order = trade(second)  # the same symbol: one netted position, two strategies' fills
    binance_fake.set_price("BTCUSDT", "46000")
    close = trade(first, "close", price="46000")
    # A trade that is not ours (placed in Binance's own UI, say) stays unattributed.
    binance_exchange.place_market_order(
        OrderRequest(symbol="ETHUSDT", side="BUY", quantity=D("0.01"), client_order_id="manual-1"),
        stamp=binance_exchange.order_stamp())
    ledger_import(binance_exchange)
    for order, name in ((a_order, "A"), (b_order, "B"), (close, "A")):
        lines = LedgerEntry.objects.filter(order=order)
        assert lines.exists() and set(lines.values_list("strategy", flat=True)) == {name}
    assert LedgerEntry.objects.filter(order=close, kind=LedgerEntry.Kind.REALIZED_PNL).exists()
    manual = LedgerEntry.objects.get(symbol="ETHUSDT")
    assert (manual.order, manual.strategy) == (None, "")


def test_it_attributes_on_a_later_run_what_it_could_not_read_before(binance_fake, binance_exchange):
    order = trade(strategy())
    binance_fake.fail_next("/fapi/v1/userTrades", status=500, method="GET")
    assert ledger_import(binance_exchange) == 1  # imported all the same, not yet attributed
    assert LedgerEntry.objects.get().order is None
    assert ledger_import(binance_exchange) == 0
    assert (LedgerEntry.objects.get().order, LedgerEntry.objects.get().strategy) == (order, "ALSAPRO 1")


def test_it_knows_a_trade_by_its_symbol_and_id(binance_fake, binance_exchange):
    order = trade(strategy())
    # Binance numbers trades per symbol: another symbol's trade with the same id is not ours.
    same_id = str(binance_fake.trades[-1]["id"])
    binance_fake._add_income("ETHUSDT", "COMMISSION", D("-0.5"), binance_fake.server_ms(), trade_id=same_id)
    ledger_import(binance_exchange)
    assert LedgerEntry.objects.get(symbol="BTCUSDT").order == order
    assert LedgerEntry.objects.get(symbol="ETHUSDT").order is None


def test_it_records_the_exchanges_commission_and_realized_pnl_on_the_order(binance_fake, binance_exchange):
    ours = strategy()
    opening = trade(ours)
    binance_fake.set_price("BTCUSDT", "46000")
    closing = trade(ours, "close", price="46000")
    assert closing.commission == 0  # Binance's order answer carries none
    ledger_import(binance_exchange)
    opening.refresh_from_db()
    closing.refresh_from_db()
    assert (opening.commission, opening.commission_asset) == (D("0.111") * 45000 * D("0.0005"), "USDT")
    assert (closing.commission, closing.realized_pnl) == (D("0.111") * 46000 * D("0.0005"), D("111"))
    # The order's figures and its ledger lines agree.
    assert -ledger_sum(order=closing, kind="COMMISSION") == closing.commission
    assert ledger_sum(order=closing, kind="REALIZED_PNL") == closing.realized_pnl


def test_it_reads_fills_of_one_order(binance_fake, binance_exchange):
    order = trade(strategy())
    fills = order_fills_record(order, exchange=binance_exchange)
    assert [(f.order_id, f.side, f.qty, f.price) for f in fills] == [(order.exchange_order_id, "BUY", D("0.111"), D("45000"))]
    assert binance_fake.requests_to("/fapi/v1/userTrades")[-1].params["orderId"] == order.exchange_order_id


def test_it_reconciles_per_symbol_totals_with_the_wallet_to_the_cent(binance_fake, binance_exchange):
    ours = strategy()
    start = binance_fake.wallet
    trade(ours)
    binance_fake.set_price("BTCUSDT", "44321.7")
    trade(ours, "close", price="44321.7")
    after_btc = binance_fake.wallet
    trade(ours, "sell", symbol="ETHUSDT", price="3000")
    binance_fake.add_funding("ETHUSDT", "0.4321")
    binance_fake.set_price("ETHUSDT", "2987.65")
    trade(ours, "close", symbol="ETHUSDT", price="2987.65")
    after_eth = binance_fake.wallet
    ledger_import(binance_exchange)
    kinds = ("REALIZED_PNL", "COMMISSION", "FUNDING_FEE")
    assert ledger_sum(symbol="BTCUSDT", kind__in=kinds).quantize(CENT) == (after_btc - start).quantize(CENT)
    assert ledger_sum(symbol="ETHUSDT", kind__in=kinds).quantize(CENT) == (after_eth - after_btc).quantize(CENT)
    assert ledger_sum().quantize(CENT) == (after_eth - start).quantize(CENT) != 0


def test_it_keeps_binances_name_for_kinds_of_its_own(binance_fake, binance_exchange):
    binance_fake._add_income("", "TRANSFER", D("500"), binance_fake.server_ms(), trade_id="")
    [record] = binance_exchange.get_income(start_ms=None, limit=10)
    assert (record.kind, record.info, record.symbol, record.amount) == (IncomeKind.OTHER, "TRANSFER", "", D("500"))
    ledger_import(binance_exchange)
    assert LedgerEntry.objects.get().kind == LedgerEntry.Kind.OTHER


# --- the paper exchange ------------------------------------------------------------------------------
@pytest.fixture
def paper(settings):
    settings.EXCHANGE = "paper"
    settings.PAPER_BALANCE = D("10000")
    reset_exchange()
    yield get_exchange()
    reset_exchange()


def test_it_reconciles_a_paper_day_of_trades_to_the_cent(paper):
    ours, other = strategy(), strategy("ALSAPRO 2", products=("ETHUSDT",))
    day = [
        (ours, "buy", "BTCUSDT", "45000"), (ours, "close", "BTCUSDT", "46012.3"),
        (other, "sell", "ETHUSDT", "3000"), (other, "close", "ETHUSDT", "3123.45"),
        (ours, "buy", "BTCUSDT", "45500"), (ours, "sell", "BTCUSDT", "45123.4"),  # a reversal into a short
        (ours, "close", "BTCUSDT", "44999.9"),
    ]
    for preference, action, symbol, price in day:
        trade(preference, action, symbol=symbol, price=price)
    assert LedgerEntry.objects.count() > len(day)  # written with the fills, before any import
    assert ledger_import(paper) == 0
    wallet_change = PaperAccount.objects.get().wallet_balance - D("10000")
    assert ledger_sum().quantize(CENT) == wallet_change.quantize(CENT) != 0
    for symbol in ("BTCUSDT", "ETHUSDT"):
        orders = PaperOrder.objects.filter(symbol=symbol)
        expected = sum((o.realized_pnl - o.commission for o in orders), D(0))
        assert ledger_sum(symbol=symbol).quantize(CENT) == expected.quantize(CENT)
    assert set(LedgerEntry.objects.filter(symbol="ETHUSDT").values_list("strategy", flat=True)) == {"ALSAPRO 2"}
    assert not LedgerEntry.objects.filter(order__isnull=True).exists()


def test_it_pages_through_the_paper_ledger(paper):
    ours = strategy()
    for price, exit_price in (("45000", "45100"), ("45500", "45400"), ("45200", "45300"), ("45900", "45800")):
        trade(ours, "buy", price=price)
        trade(ours, "close", price=exit_price)
    LedgerEntry.objects.all().delete()  # lost, as in a database restored from an older dump
    assert ledger_import(paper, limit=3) == LedgerEntry.objects.count() == 12  # 8 commissions, 4 realized P&L
    assert not LedgerEntry.objects.filter(order__isnull=True).exists()


def test_it_reads_a_paper_orders_fill(paper):
    order = trade(strategy())
    [fill] = paper.get_fills("BTCUSDT", order_id=order.exchange_order_id)
    assert (fill.qty, fill.price, fill.commission, fill.commission_asset) == (
        order.executed_qty, D("45000"), order.commission, "USDT")
    assert paper.get_fills("BTCUSDT", order_id="12345") == []


# --- the job -----------------------------------------------------------------------------------------
def test_it_is_scheduled_every_five_minutes():
    schedule = Schedule.objects.get(func="analytics.tasks.import_ledger")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 5, -1)


def test_it_imports_from_the_configured_exchange_in_the_job(paper):
    trade(strategy())
    LedgerEntry.objects.all().delete()
    assert import_ledger() == "1 ledger line(s) imported"
    assert import_ledger_after_fills("BTCUSDT", "ETHUSDT") == "0 ledger line(s) imported after fills of BTCUSDT, ETHUSDT"


# --- the ledger follows the fills (issue #17) ---------------------------------------------------------
def test_it_writes_a_paper_fills_lines_with_the_fill_attributed_to_its_order(paper):
    ours, other = strategy(), strategy("ALSAPRO 2")
    opening = trade(ours)
    closing = trade(ours, "close", price="46000")
    trade(other, symbol="ETHUSDT", price="3000")
    lines = LedgerEntry.objects.filter(symbol="BTCUSDT")
    assert sorted(lines.values_list("order", "kind")) == [
        (opening.pk, "COMMISSION"), (closing.pk, "COMMISSION"), (closing.pk, "REALIZED_PNL")]
    assert set(lines.values_list("strategy", flat=True)) == {"ALSAPRO 1"}
    assert ledger_sum(order=closing) == closing.realized_pnl - closing.commission == D("111") - D("2.553")
    assert LedgerEntry.objects.get(symbol="ETHUSDT").strategy == "ALSAPRO 2"
    assert ledger_import(paper) == 0  # the import reads them again and adds nothing


def test_it_writes_a_triggered_paper_stops_lines_for_the_next_import_to_attribute(paper):
    from trading.exchange import ProtectiveUpdate, StreamAlive
    from trading.exchange.paper import PaperUserStream
    from trading.live import order_update_apply, protective_update_apply

    StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"], leverage=5, allocation_pct=D(10),
                                      stop_loss=D(2))
    trade(StrategyPreference.objects.get())
    paper.observe_price("BTCUSDT", D("44000"))  # crosses the stop at 44,100: the paper exchange fills it
    stop_line = LedgerEntry.objects.get(symbol="BTCUSDT", kind="REALIZED_PNL")
    assert stop_line.amount == (D("44000") - D("45000")) * D("0.111") and stop_line.order is None
    # The user stream records the fill as an Order of ours; the next import attributes the lines to it.
    for event in PaperUserStream(paper).events(threading.Event()):
        if isinstance(event, StreamAlive):  # after what the paper exchange did by itself
            break
        if isinstance(event, ProtectiveUpdate):
            protective_update_apply(event)
        elif isinstance(event, OrderUpdate):
            order_update_apply(event)
    assert ledger_import(paper) == 0
    stop_fill = Order.objects.get(source=Order.Source.STOP_LOSS)
    stop_line.refresh_from_db()
    assert (stop_line.order, stop_line.strategy) == (stop_fill, "ALSAPRO 1")  # the strategy that placed the stop


def test_it_stamps_an_import_that_read_to_the_end_and_not_one_cut_short(binance_fake, binance_exchange):
    at = binance_fake.server_ms() - 60_000
    for n in range(3):
        binance_fake._add_income("BTCUSDT", "COMMISSION", D("-1"), at + n, trade_id=str(n))
    assert ledger_import(binance_exchange, limit=2, max_pages=1) == 2  # cut short: the third waits
    newest = LedgerEntry.objects.latest("time").time
    assert ledger_as_of(binance_exchange.account_id) == newest
    before = timezone.now()
    assert ledger_import(binance_exchange, limit=2) == 1  # on to a short page: read to the end
    assert before <= ledger_as_of(binance_exchange.account_id) <= timezone.now()
    assert ledger_as_of("another-account") is None


def test_it_says_the_ledger_is_as_of_its_newest_line_when_that_is_later_than_the_import(paper):
    ledger_import(paper)
    imported_at = ledger_as_of("paper")
    assert imported_at is not None
    order = trade(strategy())  # its lines are written with the fill, after the import
    newest = LedgerEntry.objects.get(order=order).time
    assert newest > imported_at
    assert ledger_as_of("paper") == newest
