"""The analytics and account-history pages: access, empty states, figures that match hand-computed
ones, the period filter, and a bounded number of queries over a large history."""

import threading
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.cache import cache
from django.utils import timezone

from analytics.models import AccountSnapshot, LedgerEntry
from tests.ui.bulk_records import bulk_history
from trading.models import Execution, Order, Signal

pytestmark = pytest.mark.django_db

# Four whole UTC days, all in the past: D1 = midnight four days ago … D4 = midnight yesterday.
MIDNIGHT = (timezone.now() - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
D1, D2, D3, D4 = (MIDNIGHT + timedelta(days=n) for n in range(4))


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the page caches its figures by a fingerprint of the data; each test starts anew
    yield
    cache.clear()


def at(day: datetime, hour: int) -> datetime:
    return day + timedelta(hours=hour)


def fill(n, when, strategy, symbol, side, qty, price, *, realized="0", commission="0", queue_ms=2):
    signal = Signal.objects.create(action=side.lower(), symbol=symbol, strategy=strategy, status="done",
                                   idempotency_key=f"an-{n}", received_at=when, http_status=202)
    execution = Execution.objects.create(
        signal=signal, strategy=strategy, symbol=symbol, exchange="paper", status="filled", received_at=when,
        queued_at=when + timedelta(milliseconds=queue_ms), started_at=when + timedelta(milliseconds=10),
        sent_at=when + timedelta(milliseconds=12), acknowledged_at=when + timedelta(milliseconds=40),
        finished_at=when + timedelta(milliseconds=45),
    )
    Order.objects.create(
        execution=execution, leg=1, purpose="open", client_order_id=f"an-{n}", symbol=symbol, side=side,
        quantity=D(qty), executed_qty=D(qty), avg_price=D(price), status="FILLED", realized_pnl=D(realized),
        commission=D(commission), created_at=when, acknowledged_at=when + timedelta(milliseconds=40),
    )


def ledger(n, when, kind, amount, *, symbol="BTCUSDT", strategy="S1", account="paper"):
    LedgerEntry.objects.create(account=account, tran_id=str(n), kind=kind, symbol=symbol, amount=D(amount), time=when,
                               strategy=strategy)


def snapshot(when, equity, *, account="paper"):
    AccountSnapshot.objects.create(taken_at=when, exchange="paper", account=account, wallet_balance=D(equity),
                                   available_balance=D(equity), equity=D(equity), unrealized_pnl=D(0))


def make_history():
    """Three closed trades and one open one, their ledger lines, and an equity curve.

    S1 BTCUSDT long  D1: buy 0.1 (fee 2), sell 0.1 realizing 100 (fee 2.05)   net 100 − 2 − 2.05 = 95.95  win
    S1 BTCUSDT short D2: sell 0.1 (fee 2.05), buy 0.1 realizing −50 (fee 2.07) net −50 − 2.05 − 2.07 = −54.12 loss
    S2 ETHUSDT long  D3: buy 1 (fee 1), sell 1 realizing 2.004 (fee 1)         net 2.004 − 2 = 0.004  break-even
    S2 ETHUSDT long  D4: buy 0.5 (fee 0.5), still open
    Queue gaps of the seven executions: 1 … 7 ms.
    """
    fill(1, at(D1, 10), "S1", "BTCUSDT", "BUY", "0.1", "40000", commission="2", queue_ms=1)
    fill(2, at(D1, 12), "S1", "BTCUSDT", "SELL", "0.1", "41000", realized="100", commission="2.05", queue_ms=2)
    fill(3, at(D2, 10), "S1", "BTCUSDT", "SELL", "0.1", "41000", commission="2.05", queue_ms=3)
    fill(4, at(D2, 11), "S1", "BTCUSDT", "BUY", "0.1", "41500", realized="-50", commission="2.07", queue_ms=4)
    fill(5, at(D3, 9), "S2", "ETHUSDT", "BUY", "1", "2000", commission="1", queue_ms=5)
    fill(6, at(D3, 10), "S2", "ETHUSDT", "SELL", "1", "2002", realized="2.004", commission="1", queue_ms=6)
    fill(7, at(D4, 9), "S2", "ETHUSDT", "BUY", "0.5", "2010", commission="0.5", queue_ms=7)
    kind = LedgerEntry.Kind
    for n, (when, what, amount, symbol, strategy) in enumerate([
        (at(D1, 10), kind.COMMISSION, "-2", "BTCUSDT", "S1"),
        (at(D1, 12), kind.REALIZED_PNL, "100", "BTCUSDT", "S1"),
        (at(D1, 12), kind.COMMISSION, "-2.05", "BTCUSDT", "S1"),
        (at(D2, 10), kind.COMMISSION, "-2.05", "BTCUSDT", "S1"),
        (at(D2, 11), kind.REALIZED_PNL, "-50", "BTCUSDT", "S1"),
        (at(D2, 11), kind.COMMISSION, "-2.07", "BTCUSDT", "S1"),
        (at(D2, 16), kind.FUNDING_FEE, "-1.5", "BTCUSDT", ""),  # not attributed to a strategy
        (at(D3, 9), kind.COMMISSION, "-1", "ETHUSDT", "S2"),
        (at(D3, 10), kind.REALIZED_PNL, "2.004", "ETHUSDT", "S2"),
        (at(D3, 10), kind.COMMISSION, "-1", "ETHUSDT", "S2"),
        (at(D3, 16), kind.FUNDING_FEE, "0.25", "ETHUSDT", "S2"),
        (at(D4, 9), kind.COMMISSION, "-0.5", "ETHUSDT", "S2"),
        (at(D4, 9), kind.OTHER, "1000", "", ""),  # a transfer: not P&L
    ]):
        ledger(n, when, what, amount, symbol=symbol, strategy=strategy)
    ledger(99, at(D1, 12), kind.REALIZED_PNL, "7777", account="binance-live-0123")  # another account
    # Peak 10100 (D1 13:00) → trough 10020 (D3 08:00); new peak 10120 (D3 12:00), now 10090.
    for when, equity in [(at(D1, 9), "10000"), (at(D1, 13), "10100"), (at(D2, 12), "10040"), (at(D3, 8), "10020"),
                         (at(D3, 12), "10120"), (at(D4, 8), "10090")]:
        snapshot(when, equity)
    snapshot(at(D1, 14), "1", account="binance-live-0123")


def figure(text: str, name: str) -> str:
    start = text.index(f'data-figure="{name}">') + len(f'data-figure="{name}">')
    return text[start:text.index("<", start)].strip()


@pytest.mark.parametrize("url", ["/ui/analytics/", "/ui/account/"])
def test_it_sends_an_anonymous_visitor_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_it_shows_an_empty_state_on_a_new_install(trader_client):
    response = trader_client.get("/ui/analytics/")
    text = response.content.decode()
    assert response.status_code == 200
    assert "No trading history yet" in text
    assert "data-chart" not in text
    assert "Definitions" in text and "Profit factor" in text


def test_it_shows_an_empty_account_history_on_a_new_install(trader_client):
    text = trader_client.get("/ui/account/").content.decode()
    assert "No snapshots yet" in text
    assert "data-chart" not in text


def test_it_shows_hand_computed_figures(trader_client):
    make_history()
    text = trader_client.get("/ui/analytics/?period=all").content.decode()
    assert figure(text, "realized") == "52.00"  # 100 − 50 + 2.004 = 52.004
    assert figure(text, "commission") == "-10.67"  # −2 −2.05 −2.05 −2.07 −1 −1 −0.5
    assert figure(text, "funding") == "-1.25"  # −1.5 + 0.25
    assert figure(text, "net") == "40.08"  # 52.004 − 10.67 − 1.25 = 40.084; the transfer and the other account left out
    assert figure(text, "trades") == "3"
    assert "1 open" in text
    assert figure(text, "win-rate") == "50.0 %"  # 1 ÷ (1 win + 1 loss); the break-even apart
    assert figure(text, "outcomes") == "1 won · 1 lost · 1 break-even"
    assert figure(text, "average-win") == "95.95"
    assert figure(text, "average-loss") == "-54.12"
    assert figure(text, "profit-factor") == "1.77"  # 95.95 ÷ 54.12 = 1.7729…
    assert figure(text, "expectancy") == "13.94"  # (95.95 − 54.12 + 0.004) ÷ 3 = 13.9446…
    assert figure(text, "max-drawdown") == "80.00"  # 10100 − 10020
    assert "(0.79 %)" in text  # 80 ÷ 10100 = 0.792 %
    assert f"peak {at(D1, 13):%Y-%m-%d %H:%M} → trough {at(D3, 8):%Y-%m-%d %H:%M}" in text
    assert figure(text, "current-drawdown") == "30.00"  # 10120 − 10090
    assert "(0.30 %)" in text  # 30 ÷ 10120 = 0.296 %
    assert f"below the peak of {at(D3, 12):%Y-%m-%d %H:%M}" in text


def test_it_breaks_figures_down_by_strategy_symbol_and_side(trader_client):
    make_history()
    text = trader_client.get("/ui/analytics/?period=all").content.decode()
    assert "41.83" in row(text, "group", "S1")  # 100 − 50 − 2 − 2.05 − 2.05 − 2.07
    assert "-0.25" in row(text, "group", "S2")  # 2.004 − 1 − 1 + 0.25 − 0.5 = −0.246
    assert "-1.50" in row(text, "group", "(unattributed)")  # the funding fee no strategy claimed
    assert "40.33" in row(text, "group", "BTCUSDT")  # 41.83 − 1.5
    assert "-0.25" in row(text, "group", "ETHUSDT")
    long, short = row(text, "group", "long"), row(text, "group", "short")
    assert "100.0 %" in long and "95.95" in long  # one win, one break-even (not in the rate); net 95.954
    assert "0.0 %" in short and "-54.12" in short


# Net P&L per day, by hand: D1 100 − 2 − 2.05; D2 −50 − 2.05 − 2.07 − 1.5; D3 2.004 − 1 − 1 + 0.25; D4 −0.5.
DAY_NETS = {D1: D("95.95"), D2: D("-55.62"), D3: D("0.254"), D4: D("-0.5")}


def test_it_breaks_net_pnl_down_by_day(trader_client):
    make_history()
    text = trader_client.get("/ui/analytics/?period=all").content.decode()
    for day, net in DAY_NETS.items():
        assert f"<strong>{net:,.2f}</strong>" in row(text, "period", f"{day:%Y-%m-%d}")


@pytest.mark.parametrize(("by", "label"), [("week", lambda day: "{}-W{:02d}".format(*day.isocalendar()[:2])),
                                           ("month", lambda day: f"{day:%Y-%m}")])
def test_it_breaks_net_pnl_down_by_week_and_month(trader_client, by, label):
    make_history()
    expected: dict[str, D] = {}
    for day, net in DAY_NETS.items():  # the four days fall in one or two weeks (months): summed by hand here
        expected[label(day)] = expected.get(label(day), D(0)) + net
    text = trader_client.get(f"/ui/analytics/?period=all&by={by}").content.decode()
    assert f"Net P&amp;L by {by}" in text
    for name, net in expected.items():
        assert f"<strong>{net:,.2f}</strong>" in row(text, "period", name)


def test_it_filters_by_a_chosen_range_of_days(trader_client):
    make_history()
    text = trader_client.get(f"/ui/analytics/?period=range&start={D2:%Y-%m-%d}&end={D2:%Y-%m-%d}").content.decode()
    assert f"{D2:%Y-%m-%d} to {D2:%Y-%m-%d}" in text
    assert figure(text, "net") == "-55.62"  # D2 only
    assert figure(text, "realized") == "-50.00"
    assert figure(text, "trades") == "1"  # the short closed on D2; the long closed on D1 is out
    assert figure(text, "average-loss") == "-54.12"
    assert figure(text, "win-rate") == "0.0 %"
    # The curve within D2 alone is one snapshot (10040): no drawdown in the range.
    assert figure(text, "max-drawdown") == "0.00"


def test_it_counts_a_trade_in_the_period_it_closed_in_though_it_opened_before(trader_client):
    make_history()
    fill(8, at(D3, 20), "S3", "SOLUSDT", "BUY", "10", "150", commission="0.75")
    fill(9, at(D4, 2), "S3", "SOLUSDT", "SELL", "10", "151", realized="10", commission="0.76")
    text = trader_client.get(f"/ui/analytics/?start={D4:%Y-%m-%d}&end={D4:%Y-%m-%d}").content.decode()
    assert figure(text, "trades") == "1"
    assert figure(text, "average-win") == "8.49"  # 10 − 0.75 (paid on D3) − 0.76


def test_it_filters_by_strategy_and_symbol(trader_client):
    make_history()
    text = trader_client.get("/ui/analytics/?period=all&strategy=S2").content.decode()
    assert figure(text, "net") == "-0.25"  # 2.004 − 1 − 1 + 0.25 − 0.5
    assert figure(text, "outcomes") == "0 won · 0 lost · 1 break-even"
    assert 'data-group="S1"' not in text
    text = trader_client.get("/ui/analytics/?period=all&symbol=BTCUSDT").content.decode()
    assert figure(text, "net") == "40.33"  # S1's 41.83 and the unattributed BTCUSDT funding −1.5
    assert figure(text, "trades") == "2"


def test_it_refuses_a_range_that_ends_before_it_starts(trader_client):
    make_history()
    text = trader_client.get(f"/ui/analytics/?start={D3:%Y-%m-%d}&end={D1:%Y-%m-%d}").content.decode()
    assert "is after" in text and "Showing the last 30 days instead" in text
    assert figure(text, "net") == "40.08"  # the default period (30 days) holds all four days


def test_it_shows_a_new_ledger_line_at_once_though_figures_are_cached(trader_client):
    make_history()
    assert figure(trader_client.get("/ui/analytics/?period=all").content.decode(), "net") == "40.08"
    ledger(100, at(D4, 10), LedgerEntry.Kind.FUNDING_FEE, "-0.08")
    assert figure(trader_client.get("/ui/analytics/?period=all").content.decode(), "net") == "40.00"  # 40.084 − 0.08


def test_it_shows_latency_percentiles_per_stage(trader_client):
    make_history()
    text = trader_client.get("/ui/analytics/?period=all").content.decode()
    queue = row(text, "stage", "queue")
    # Seven queue gaps 1 … 7 ms, nearest rank: p50 rank ⌈3.5⌉ = 4 → 4.0; p95 rank ⌈6.65⌉ = 7; p99 rank 7.
    assert cells(queue) == ["7", "4.0", "7.0", "7.0"]
    # sent → acknowledged is 28 ms for each: every percentile is 28.0.
    assert cells(row(text, "stage", "exchange"))[-3:] == ["28.0", "28.0", "28.0"]


def cells(html: str) -> list[str]:
    return [part.split(">", 1)[1].split("<", 1)[0].strip() for part in html.split('<td class="num')[1:]]


def test_it_embeds_the_chart_data(trader_client):
    make_history()
    text = trader_client.get("/ui/analytics/?period=all").content.decode()
    assert 'id="analytics-equity-points"' in text and 'data-chart="area"' in text
    assert 'id="daily-pnl-points"' in text and 'data-chart="histogram"' in text
    assert f'"time": "{D1:%Y-%m-%d}", "value": 95.95' in text


def test_it_shows_the_account_history_newest_first_and_paginated(trader_client):
    for minutes in range(60):
        snapshot(MIDNIGHT + timedelta(minutes=minutes), str(10_000 + minutes))
    snapshot(MIDNIGHT, "1", account="binance-live-0123")
    text = trader_client.get("/ui/account/").content.decode()
    assert 'data-chart="area"' in text
    assert "Page 1 of 2 · 60 in all" in text  # 50 a page; the other account's snapshot is not counted
    assert text.index("10,059.00") < text.index("10,058.00")
    assert "10,009.00" not in text  # on page 2
    assert "10,009.00" in trader_client.get("/ui/account/?page=2").content.decode()


def row(text: str, kind: str, name: str) -> str:
    start = text.index(f'data-{kind}="{name}"')
    return text[start:text.index("</tr>", start)]


def test_it_reads_a_bounded_number_of_queries_over_a_large_history(trader_client, django_assert_max_num_queries):
    bulk_history(executions=10_000, ledger=50_000, snapshots=2_000)
    for url in ("/ui/analytics/?period=all", "/ui/analytics/?period=7d&by=month&strategy=TREND",
                f"/ui/analytics/?start={D1:%Y-%m-%d}&symbol=ETHUSDT", "/ui/account/"):
        cache.clear()
        with django_assert_max_num_queries(14):
            response = trader_client.get(url)
        assert response.status_code == 200
        with django_assert_max_num_queries(10):  # the same again: from the cache
            trader_client.get(url)


# --- the ledger follows the fills (issue #17) ---------------------------------------------------------
@pytest.fixture
def paper(settings):
    from trading.exchange import get_exchange, reset_exchange
    from trading.webhook import RATE_LIMITER

    settings.EXCHANGE, settings.PAPER_BALANCE = "paper", D("10000")
    reset_exchange()
    RATE_LIMITER.reset()
    yield get_exchange()
    reset_exchange()


def alert(client, action: str, price: float) -> None:
    """Through the real path: POST /webhook, then the queued job run as the worker runs it."""
    from tests.support.queue import run_queued_jobs

    body = {"action": action, "symbol": "BTCUSDT", "price": price, "strategy": "ALSAPRO 1",
            "passphrase": "test-passphrase-0123456789", "time": timezone.now().isoformat(timespec="milliseconds")}
    response = client.post("/webhook", body, content_type="application/json")
    assert response.status_code == 202, response.content
    assert run_queued_jobs() == 1


def net_of_trades(text: str) -> D:
    """The sum of the trades table (long vs short): each side's net of its closed trades."""
    return sum((D(cells(row(text, "group", side))[3].replace(",", "")) for side in ("long", "short")
                if f'data-group="{side}"' in text), D(0))


def test_it_agrees_with_its_trades_right_after_a_paper_round_trip_through_the_webhook(
        paper, committed_client, trader_client):
    """No ledger import is run: the paper exchange wrote the ledger with its fills."""
    from preferences.models import StrategyPreference
    from tests.support.queue import queued_jobs

    StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"], leverage=5, allocation_pct=D(10))
    alert(committed_client, "buy", 45000)
    alert(committed_client, "close", 46012.3)
    assert not queued_jobs()
    orders = Order.objects.filter(executed_qty__gt=0)
    assert orders.count() == 2
    expected = sum((order.realized_pnl - order.commission for order in orders), D(0))

    text = trader_client.get("/ui/analytics/").content.decode()
    assert figure(text, "trades") == "1"
    assert figure(text, "net") == f"{expected:,.2f}" == f"{net_of_trades(text):,.2f}"
    # By hand: 0.111 BTC, realized (46,012.3 − 45,000) × 0.111 = 112.3653; commissions 0.05 % of
    # 4,995 and of 5,107.3653: 2.4975 + 2.5536827 → net 107.3141
    assert figure(text, "net") == "107.31"
    assert cells(row(text, "group", "ALSAPRO 1"))[0] == "107.31"  # the strategy's: attributed with the fill


def test_it_agrees_with_its_trades_right_after_a_paper_stop_loss_closes_the_position(
        paper, committed_client, trader_client):
    from preferences.models import StrategyPreference
    from trading.exchange import OrderUpdate, ProtectiveUpdate, StreamAlive
    from trading.exchange.paper import PaperUserStream
    from trading.live import order_update_apply, protective_update_apply

    StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"], leverage=5, allocation_pct=D(10),
                                      stop_loss=D(2))
    alert(committed_client, "buy", 45000)
    paper.observe_price("BTCUSDT", D("44000"))  # crosses the stop at 44,100: the paper exchange closes
    for event in PaperUserStream().events(threading.Event()):  # the user stream records what it did
        if isinstance(event, StreamAlive):
            break
        if isinstance(event, ProtectiveUpdate):
            protective_update_apply(event)
        elif isinstance(event, OrderUpdate):
            order_update_apply(event)
    stop_fill = Order.objects.get(source=Order.Source.STOP_LOSS)
    assert stop_fill.realized_pnl == D("-111")  # (44,000 − 45,000) × 0.111

    text = trader_client.get("/ui/analytics/").content.decode()
    assert figure(text, "trades") == "1" and "1 open" not in text
    # −111 − 2.4975 (entry) − 2.442 (the stop's commission, 0.05 % of 4,884) = −115.9395
    assert figure(text, "net") == "-115.94" == f"{net_of_trades(text):,.2f}"
    assert cells(row(text, "group", "ALSAPRO 1"))[3] == "1"  # the stop-loss's fill closed the strategy's trade
    assert figure(trader_client.get("/ui/analytics/?strategy=ALSAPRO+1").content.decode(), "trades") == "1"


def test_it_says_the_ledger_is_as_of_its_newest_line_before_any_import(trader_client):
    make_history()
    text = trader_client.get("/ui/analytics/?period=all").content.decode()
    assert figure(text, "ledger-as-of") == f"ledger as of {at(D4, 9):%Y-%m-%d %H:%M:%S} UTC"


def test_it_says_the_ledger_is_as_of_its_last_import_when_that_is_later(trader_client):
    from analytics.ledger import ledger_import
    from trading.exchange import get_exchange

    make_history()
    before = timezone.now().replace(microsecond=0)
    ledger_import(get_exchange())  # the paper exchange: nothing new, but read to the end
    text = trader_client.get("/ui/analytics/?period=all").content.decode()
    shown = datetime.strptime(figure(text, "ledger-as-of"), "ledger as of %Y-%m-%d %H:%M:%S UTC")
    assert before <= shown.replace(tzinfo=before.tzinfo) <= timezone.now()
    # A line newer than the import (the paper exchange writes its fills' lines as they happen).
    later = timezone.now() + timedelta(seconds=5)
    ledger(101, later, LedgerEntry.Kind.COMMISSION, "-0.1")
    text = trader_client.get("/ui/analytics/?period=all").content.decode()
    assert figure(text, "ledger-as-of") == f"ledger as of {later:%Y-%m-%d %H:%M:%S} UTC"
