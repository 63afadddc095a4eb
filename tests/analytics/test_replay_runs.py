"""A replay run end to end (analytics/replay_runs.py): recorded signals through the real task, the klines
imported from the (fake) exchange, the two replays and Reality from the ledger."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.exceptions import ValidationError

from analytics.models import Kline, LedgerEntry, ReplayRun
from analytics.replay_runs import NO_HISTORY_NOTE, replay_execute, replay_request
from preferences.models import StrategyPreference
from tests.support.queue import queued_jobs, run_queued_jobs
from trading.exchange import reset_exchange
from trading.models import Signal

pytestmark = pytest.mark.django_db

D = Decimal
START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(hours=2)
MINUTE = timedelta(minutes=1)
NOW = datetime(2026, 11, 10, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000


def flat_bars_with_a_dip(binance_fake) -> None:
    """50,000 every minute, but the minute at 00:30 dips to 48,800: through a 2 % stop from 50,000
    (49,000), not through a 3 % one (48,500)."""
    rows = []
    for n in range(120):
        moment = START + n * MINUTE
        low = "48800" if n == 30 else "50000"
        rows.append((ms(moment), "50000", "50000", low, "50000"))
    binance_fake.kline_path["BTCUSDT"] = rows


def recorded_alerts(strategy: str = "ALSA") -> None:
    """A long of 0.01 BTC at 50,000 at 00:10, closed by the alert at 50,500 at 01:00; and alerts that never
    traded (filtered, another strategy, outside the period), which the replay leaves out."""
    Signal.objects.create(strategy=strategy, action="buy", symbol="BTCUSDT", quantity=D("0.01"), price=D("50000"),
                          market_position="long", prev_market_position="flat", status="done",
                          received_at=START + 10 * MINUTE, idempotency_key="a1")
    Signal.objects.create(strategy=strategy, action="sell", symbol="BTCUSDT", quantity=D("0.01"), price=D("50500"),
                          market_position="flat", prev_market_position="long", status="done",
                          received_at=START + 60 * MINUTE, idempotency_key="a2")
    Signal.objects.create(strategy=strategy, action="buy", symbol="BTCUSDT", quantity=D("5"), price=D("50000"),
                          market_position="long", status="filtered", received_at=START + 20 * MINUTE, idempotency_key="a3")
    Signal.objects.create(strategy="OTHER", action="buy", symbol="BTCUSDT", quantity=D("5"), price=D("50000"),
                          market_position="long", status="done", received_at=START + 20 * MINUTE, idempotency_key="a4")
    Signal.objects.create(strategy=strategy, action="buy", symbol="BTCUSDT", quantity=D("5"), price=D("50000"),
                          market_position="long", status="done", received_at=END, idempotency_key="a5")


def ledger() -> None:
    for n, (kind, amount, strategy, time) in enumerate([
        ("REALIZED_PNL", "5", "ALSA", START + 60 * MINUTE), ("COMMISSION", "-0.25", "ALSA", START + 10 * MINUTE),
        ("COMMISSION", "-0.25", "ALSA", START + 60 * MINUTE), ("FUNDING_FEE", "-0.1", "ALSA", START + 30 * MINUTE),
        ("REALIZED_PNL", "100", "OTHER", START + 60 * MINUTE), ("REALIZED_PNL", "100", "ALSA", END),
    ]):
        LedgerEntry.objects.create(account="a", tran_id=str(n), kind=kind, symbol="BTCUSDT", amount=D(amount),
                                   strategy=strategy, time=time)


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSA", sizing="signal", stop_loss=D("3"))


def test_unchanged_settings_reproduce_the_known_result_and_a_tighter_stop_changes_the_trade(
        binance_settings, binance_fake, strategy):
    flat_bars_with_a_dip(binance_fake)
    recorded_alerts()
    ledger()
    run = replay_request("ALSA", START, END, {"stop_loss": 2}, D(0), None, now=NOW)
    assert [job["func"] for job in queued_jobs()] == ["analytics.tasks.replay_run"]

    assert run_queued_jobs() == 1

    run.refresh_from_db()
    assert (run.status, run.progress, run.error) == ("done", 100, "")
    assert run.finished_at is not None
    assert Kline.objects.filter(symbol="BTCUSDT").count() == 120  # imported for the replay
    outcome = run.outcome
    assert outcome is not None and outcome.alerts == 2
    # Recorded (3 % stop, never reached): bought 0.01 at 50,000, sold at 50,500: +5, fees 0.05 % of 500 and 505.
    recorded = outcome.recorded
    assert (recorded.realized_pnl, recorded.fees, recorded.net_pnl) == (D("5"), D("0.5025"), D("4.4975"))
    assert (recorded.trades, recorded.win_rate, recorded.profit_factor) == (1, D(100), None)
    assert [point.equity for point in recorded.equity_curve] == [D(10000), D("9999.75"), D("10004.4975")]
    # New (2 % stop at 49,000): the 00:30 bar's low of 48,800 stops it out; the close alert finds nothing.
    changed = outcome.changed
    assert (changed.realized_pnl, changed.fees, changed.net_pnl) == (D("-10"), D("0.495"), D("-10.495"))
    assert (changed.trades, changed.win_rate, changed.max_drawdown) == (1, D(0), D("10.495"))
    buy, sell = outcome.differences
    assert (buy.action, buy.recorded.exits, buy.changed.exits) == ("buy", "", "stop-loss")
    assert buy.changed.net_pnl == D("-10.495")
    assert (sell.recorded.outcome, sell.recorded.exits, sell.changed.outcome) == ("trade", "alert sell", "nothing")
    # Reality: the strategy's own ledger lines in the period.
    reality = outcome.reality
    assert (reality.realized_pnl, reality.fees, reality.funding, reality.net_pnl) == (D(5), D("0.5"), D("-0.1"), D("4.4"))
    assert reality.equity_curve[-1].equity == D("10004.4")
    assert any("taker fee" in note for note in outcome.notes)
    assert any("funding is left out" in note for note in outcome.notes)


def test_the_task_run_twice_does_nothing_the_second_time(binance_settings, binance_fake, strategy):
    flat_bars_with_a_dip(binance_fake)
    recorded_alerts()
    run = replay_request("ALSA", START, END, {}, D(0), None, now=NOW)
    run_queued_jobs()
    run.refresh_from_db()
    first = (run.result, run.finished_at)
    asked = len(binance_fake.requests)

    assert replay_execute(run.pk) == f"replay {run.pk}: already done"

    run.refresh_from_db()
    assert (run.result, run.finished_at) == first
    assert len(binance_fake.requests) == asked  # the exchange is not asked again
    assert run.outcome is not None and run.outcome.differences == ()  # no change: no difference


def test_a_failing_run_says_why(binance_settings, binance_fake, strategy):
    recorded_alerts()
    binance_fake.kline_path["BTCUSDT"] = []
    run = replay_request("ALSA", START, END, {}, D(0), None, now=NOW)
    StrategyPreference.objects.filter(pk=strategy.pk).update(take_profit_ladder="not a ladder")

    run_queued_jobs()

    run.refresh_from_db()
    assert run.status == "failed" and run.result is None
    assert "ladder" in run.error or "levels" in run.error


def test_without_price_history_it_replays_at_alert_prices_and_says_so(settings, strategy):
    settings.EXCHANGE = "paper"
    settings.PAPER_PRICE_FEED = ""
    reset_exchange()
    recorded_alerts()
    run = replay_request("ALSA", START, END, {"stop_loss": 2}, D(0), None, now=NOW)

    replay_execute(run.pk)

    run.refresh_from_db()
    assert run.status == "done", run.error
    outcome = run.outcome
    assert outcome is not None and any(NO_HISTORY_NOTE in note for note in outcome.notes)
    assert outcome.recorded.net_pnl == outcome.changed.net_pnl  # no bar: the stop never triggers
    reset_exchange()


@pytest.mark.parametrize(("fields", "named"), [
    ({"strategy": "NOPE"}, "strategy"),
    ({"start": END, "end": START}, "from"),
    ({"start": NOW - timedelta(days=91), "end": NOW}, "from"),
    ({"end": NOW + timedelta(minutes=1)}, "to"),
    ({"slippage_bps": D(-1)}, "slippage_bps"),
    ({"overrides": {"leverage": 0}}, "leverage"),
    ({"overrides": {"take_profit": [{"pct": 2, "share": 40}]}}, "take_profit"),
    ({"overrides": {"trailing_stop": {"callback": 50}}}, "trailing_stop"),
    ({"overrides": {"max_daily_loss": 10}}, "max_daily_loss"),
    ({"overrides": {"nonsense": 1}}, "type"),
])
def test_a_bad_request_names_the_field(strategy, fields, named):
    asked = {"strategy": "ALSA", "start": START, "end": END, "overrides": {}, "slippage_bps": D(2), **fields}
    with pytest.raises(ValidationError) as refused:
        replay_request(asked["strategy"], asked["start"], asked["end"], asked["overrides"], asked["slippage_bps"], None,
                       now=NOW)
    assert named in refused.value.detail
    assert not ReplayRun.objects.exists() and not queued_jobs()


def test_the_recorded_settings_are_the_strategys_at_the_periods_start(binance_settings, binance_fake, strategy):
    flat_bars_with_a_dip(binance_fake)
    recorded_alerts()
    strategy.history.all().update(history_date=START - timedelta(days=1))  # created with a 2 % stop before the period
    StrategyPreference.objects.filter(pk=strategy.pk).update(stop_loss=D("2"))
    strategy.refresh_from_db()
    record = strategy.history.first()
    assert record is not None
    record.stop_loss = D("2")
    record.save()
    strategy.stop_loss = D("3")
    strategy.save()  # now 3 %: a history record of today

    run = replay_request("ALSA", START, END, {}, D(0), None, now=NOW)
    run_queued_jobs()

    run.refresh_from_db()
    outcome = run.outcome
    assert outcome is not None
    assert outcome.recorded.realized_pnl == D("-10")  # the 2 % stop of the period's start, not today's 3 %
    assert any("as of 2026-11-01 00:00" in note for note in outcome.notes)


def test_reality_counts_the_strategys_closing_orders_net_of_their_commission():
    from analytics.replay_runs import reality_of
    from tests.api.records import make_execution
    from trading.models import Order

    for n, (pnl, commission) in enumerate([("10", "0.5"), ("-4", "0.5"), ("0.2", "0.3"), ("0", "0.1")]):
        execution = make_execution(n, received_at=START + n * MINUTE, strategy="ALSA")
        Order.objects.filter(execution=execution).update(realized_pnl=D(pnl), commission=D(commission),
                                                         created_at=START + n * MINUTE)
    other = make_execution(9, received_at=START, strategy="OTHER")
    Order.objects.filter(execution=other).update(realized_pnl=D(50), created_at=START)

    reality = reality_of("ALSA", START, END, D(1000))

    # 10 − 0.5 wins; −4 − 0.5 and 0.2 − 0.3 lose; the order without realized P&L opened.
    assert (reality.trades, reality.win_rate, reality.profit_factor) == (3, D(100) / 3, D("9.5") / D("4.6"))
    assert reality.equity_curve == (replay_point(START, D(1000)),)


def replay_point(time, equity):
    from analytics.replay_runs import CurvePoint

    return CurvePoint(time, equity)
