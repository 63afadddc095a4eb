"""Protections (issue #17): cooldown after a loss, max trades per day, loss streak, max drawdown and
trading hours each refuse opening orders with their reason, never closes, and tell the channels once
per lock. Edge tests drive trading.risk on records at chosen moments; one test per protection goes
through the real path: POST /webhook → queued job → worker → paper exchange."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.utils import timezone

from analytics.models import AccountSnapshot
from notifications.models import Channel, Notification
from preferences.models import StrategyPreference
from preferences.trading_hours import DAYS
from tests.support.queue import run_queued_jobs
from trading.exchange import reset_exchange
from trading.models import Execution, Order, ProtectiveOrder, Signal
from trading.risk import OpeningLimits, opening_limits, strategy_drawdown, strategy_lock, streak_lock
from trading.webhook import RATE_LIMITER

pytestmark = pytest.mark.django_db

D = Decimal
NAME = "ALSAPRO 1"
PASSPHRASE = "test-passphrase-0123456789"
NOW = datetime(2026, 12, 7, 12, 3, tzinfo=UTC)  # a Monday
_seq = count(1)


@pytest.fixture(autouse=True)
def _paper(settings):
    settings.EXCHANGE = "paper"
    reset_exchange()
    RATE_LIMITER.reset()
    yield
    reset_exchange()


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name=NAME, products=["BTCUSDT", "ETHUSDT"], leverage=5, sizing="allocation")


@pytest.fixture
def channel() -> Channel:
    return Channel.objects.create(name="ops", kind="email", email_to="ops@example.com", on_fill=False, on_refusal=False)


@pytest.fixture
def frozen(monkeypatch):
    """Moves the clock trading.risk reads (and the notifications' timestamps) to a chosen moment."""
    def at(moment: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    at(NOW)
    return at


def execution_of(strategy: StrategyPreference, at: datetime) -> Execution:
    signal = Signal.objects.create(action="buy", symbol="BTCUSDT", strategy=strategy.name, preference=strategy,
                                   status="done", received_at=at, idempotency_key=f"protections:{next(_seq)}")
    return Execution.objects.create(signal=signal, strategy=strategy.name, symbol="BTCUSDT", exchange="paper",
                                    status="filled", received_at=at)


def trade(strategy: StrategyPreference, at: datetime, *, net: str = "-10", purpose: str = "close",
          commission: str = "0", executed: str = "0.1", stop_loss: bool = False) -> Order:
    """A fill of the strategy's at `at`: by its signal's execution, or by a stop-loss it placed."""
    execution = execution_of(strategy, at)
    fields = {"execution": execution}
    if stop_loss:
        protective = ProtectiveOrder.objects.create(execution=execution, symbol="BTCUSDT", kind="stop_loss", side="SELL",
                                                    trigger_price=D("44000"), client_id=f"sl-{next(_seq)}")
        fields = {"execution": None, "source": Order.Source.STOP_LOSS, "protective": protective}
    return Order.objects.create(**fields, purpose=purpose, client_order_id=f"protections-{next(_seq)}", symbol="BTCUSDT",
                                side="SELL", quantity=D("0.1"), executed_qty=D(executed), realized_pnl=D(net),
                                commission=D(commission), status="FILLED", acknowledged_at=at)


def limit_texts() -> list[str]:
    return list(Notification.objects.filter(event_type="limit").order_by("id").values_list("text", flat=True))


# --- cooldown after a loss -------------------------------------------------------------------------------

def test_it_cools_down_until_exactly_the_end_of_the_cooldown(strategy):
    strategy.cooldown_after_loss = 30
    trade(strategy, NOW, net="-4.2")
    lock = strategy_lock(strategy, now=NOW + timedelta(minutes=30) - timedelta(microseconds=1))
    assert lock is not None and lock.protection == "cooldown after a loss"
    assert lock.reason == ("cooldown after a loss: the trade closed at 12:03:00 UTC lost 4.2 USDT; opens allowed again "
                           "at 12:33:00 UTC")
    assert strategy_lock(strategy, now=NOW + timedelta(minutes=30)) is None


def test_it_counts_commission_and_stop_losses_and_not_wins_for_the_cooldown(strategy):
    strategy.cooldown_after_loss = 30
    trade(strategy, NOW, net="0")  # break-even is no loss
    trade(strategy, NOW, net="1", commission="1")  # nor is +1 less 1 of fees
    trade(strategy, NOW, net="-10", purpose="open")  # an entry's fee is not a losing trade
    assert strategy_lock(strategy, now=NOW) is None
    trade(strategy, NOW, net="1", commission="1.01")  # +1 less 1.01 of fees: lost 0.01
    assert "lost 0.01 USDT" in strategy_lock(strategy, now=NOW).reason
    Order.objects.all().delete()
    trade(strategy, NOW, net="-3", stop_loss=True)  # its stop-loss, filled at the exchange
    assert "lost 3 USDT" in strategy_lock(strategy, now=NOW).reason


def test_it_ignores_the_losses_of_other_strategies(strategy):
    other = StrategyPreference.objects.create(name="OTHER", products=["BTCUSDT"])
    strategy.cooldown_after_loss = 30
    trade(other, NOW, net="-50")
    assert strategy_lock(strategy, now=NOW) is None


# --- max trades per day ----------------------------------------------------------------------------------

def test_it_refuses_opens_from_exactly_the_nth_opening_trade_of_the_utc_day(strategy):
    strategy.max_trades_per_day = 3
    midnight = NOW.replace(hour=0, minute=0)
    trade(strategy, midnight - timedelta(microseconds=1), net="0", purpose="open")  # yesterday's
    trade(strategy, midnight, net="0", purpose="open")
    trade(strategy, NOW, net="0", purpose="add")
    trade(strategy, NOW, net="0", purpose="open", executed="0")  # refused by the exchange: no trade
    trade(strategy, NOW, net="-5", purpose="close")  # a close is no opening trade
    assert strategy_lock(strategy, now=NOW) is None
    trade(strategy, NOW, net="0", purpose="open")
    lock = strategy_lock(strategy, now=NOW)
    assert lock is not None and lock.reason == ("max trades per day: the strategy made 3 opening trades since 00:00 "
                                                "UTC, its limit; opens allowed again at 2026-12-08 00:00 UTC")
    assert strategy_lock(strategy, now=midnight + timedelta(days=1)) is None


# --- loss streak -----------------------------------------------------------------------------------------

def test_it_locks_after_exactly_n_losses_in_a_row_until_the_next_utc_day(strategy):
    strategy.loss_streak_limit = 3
    trade(strategy, NOW - timedelta(hours=3), net="-1")
    trade(strategy, NOW - timedelta(hours=2), net="5")  # a win breaks the run
    trade(strategy, NOW - timedelta(hours=1), net="-1")
    trade(strategy, NOW - timedelta(minutes=30), net="-1")
    assert strategy_lock(strategy, now=NOW) is None  # 2 in a row
    trade(strategy, NOW, net="-1")
    lock = strategy_lock(strategy, now=NOW)
    assert lock is not None and lock.reason == ("loss streak: 3 losing trades in a row, the last closed at 12:03:00 UTC; "
                                                "opens locked until 2026-12-08 00:00 UTC")
    tomorrow = datetime(2026, 12, 8, tzinfo=UTC)
    assert strategy_lock(strategy, now=tomorrow - timedelta(microseconds=1)) is not None
    assert strategy_lock(strategy, now=tomorrow) is None


def test_it_needs_a_fresh_streak_after_a_lock():
    day = datetime(2026, 12, 7, tzinfo=UTC)
    losses = [day + timedelta(hours=h) for h in (1, 2, 3)]
    assert streak_lock(losses, 3) == (losses[2], day + timedelta(days=1))
    during = losses + [day + timedelta(hours=20)]  # closed while locked: counts for nothing
    next_day = [day + timedelta(days=1, hours=h) for h in (1, 2)]
    assert streak_lock(during + next_day, 3) == (losses[2], day + timedelta(days=1))  # 2 fresh: no new lock
    third = day + timedelta(days=1, hours=3)
    assert streak_lock(during + next_day + [third], 3) == (third, day + timedelta(days=2))
    assert streak_lock(losses[:2], 3) == (None, None)


# --- max drawdown ----------------------------------------------------------------------------------------

def snapshot(equity: str) -> None:
    AccountSnapshot.objects.create(taken_at=NOW, exchange="paper", account="paper", wallet_balance=D(equity),
                                   available_balance=D(equity), equity=D(equity), unrealized_pnl=D(0))


def test_it_measures_the_drawdown_from_the_peak_of_the_realized_pnl(strategy):
    trade(strategy, NOW - timedelta(hours=3), net="100")
    trade(strategy, NOW - timedelta(hours=2), net="-20", purpose="open")  # fees count
    trade(strategy, NOW - timedelta(hours=1), net="-130")
    assert strategy_drawdown(NAME, since=None) == D("150")  # peak +100, now -50
    assert strategy_drawdown(NAME, since=NOW - timedelta(hours=2)) == D("150")  # peak 0 (the start), now -150
    assert strategy_drawdown(NAME, since=NOW) == D("0")


@pytest.mark.parametrize(("limit", "locked"), [("10", True), ("10.0001", False), ("9.9999", True)])
def test_it_locks_at_exactly_the_drawdown_limit(strategy, frozen, limit, locked):
    strategy.max_drawdown_pct = D(limit)
    strategy.save()
    snapshot("900")  # after losing 100: the equity before it was 1,000, and 100 is 10 % of that
    trade(strategy, NOW - timedelta(hours=1), net="-100")
    refusal = opening_limits(strategy, "BTCUSDT").opens
    strategy.refresh_from_db()
    assert bool(refusal) is locked and (strategy.drawdown_locked_at == NOW) is locked
    if locked:
        assert refusal.startswith("max drawdown reached: the strategy's realized P&L is 100 USDT below its peak, 10 % of "
                                  "the equity before it (1000 USDT)")


def test_it_keeps_the_drawdown_lock_until_cleared_and_measures_afresh_after(strategy, frozen, channel):
    strategy.max_drawdown_pct = D("5")
    strategy.save()
    snapshot("900")
    trade(strategy, NOW - timedelta(hours=1), net="-100")
    assert opening_limits(strategy, "BTCUSDT").opens.startswith("max drawdown reached")
    strategy.refresh_from_db()
    assert "until an operator clears the drawdown lock" in opening_limits(strategy, "BTCUSDT").opens
    frozen(NOW + timedelta(days=3))
    assert opening_limits(strategy, "BTCUSDT").opens  # no time lifts it
    assert len(limit_texts()) == 1 and "max drawdown reached" in limit_texts()[0]
    strategy.drawdown_clear()
    strategy.save()
    assert strategy.drawdown_since == NOW + timedelta(days=3)
    assert opening_limits(strategy, "BTCUSDT") == OpeningLimits()  # measured from now: no drawdown


def test_it_refuses_without_locking_when_the_equity_is_unknown(strategy, frozen):
    strategy.max_drawdown_pct = D("5")
    strategy.save()
    trade(strategy, NOW - timedelta(hours=1), net="-100")
    assert "max drawdown cannot be checked" in opening_limits(strategy, "BTCUSDT").opens
    strategy.refresh_from_db()
    assert strategy.drawdown_locked_at is None


# --- each protection costs nothing unset, and tells once -------------------------------------------------

def test_it_asks_the_database_only_for_the_protections_set(strategy, django_assert_num_queries):
    trade(strategy, NOW - timedelta(days=2), net="-100")
    with django_assert_num_queries(1):  # the kill switch's row
        assert opening_limits(strategy, "BTCUSDT").opens == ""
    strategy.cooldown_after_loss, strategy.max_trades_per_day, strategy.loss_streak_limit = 30, 5, 2
    strategy.trading_hours = "00:00-24:00"  # read without a query
    with django_assert_num_queries(1 + 1 + 1 + 2):
        assert opening_limits(strategy, "BTCUSDT").opens == ""


def test_it_tells_the_channels_of_a_lock_once(strategy, channel):
    # The real clock: a notification's timestamp is the model's default, which no test clock reaches.
    strategy.cooldown_after_loss = 30
    strategy.save()
    loss_at = timezone.now() - timedelta(minutes=10)
    trade(strategy, loss_at, net="-4.2")
    for _ in range(3):
        assert opening_limits(strategy, "BTCUSDT").opens.startswith("cooldown after a loss")
    assert len(limit_texts()) == 1
    assert limit_texts()[0].startswith(f"Strategy ALSAPRO 1: cooldown after a loss: the trade closed at {loss_at:%H:%M:%S} "
                                       "UTC lost 4.2 USDT; opens allowed again at ")
    trade(strategy, timezone.now(), net="-1")  # a new loss: a new lock, told again
    opening_limits(strategy, "BTCUSDT")
    opening_limits(strategy, "BTCUSDT")
    assert len(limit_texts()) == 2 and "lost 1 USDT" in limit_texts()[1]


# --- through the webhook ---------------------------------------------------------------------------------

def alert(client, action: str, symbol: str = "BTCUSDT", price: str = "45000") -> Execution:
    body = {"action": action, "symbol": symbol, "price": price, "strategy": NAME, "passphrase": PASSPHRASE,
            "time": timezone.now().isoformat(), "id": f"protections-{next(_seq)}"}
    answer = client.post("/webhook", json.dumps(body), content_type="application/json")
    assert answer.status_code == 202, answer.content
    run_queued_jobs()
    return Execution.objects.get(signal_id=answer.json()["signal_id"])


def lose_once(client) -> None:
    assert alert(client, "buy").status == Execution.Status.FILLED
    assert alert(client, "close", price="44000").status == Execution.Status.FILLED  # realized -111, less fees


def assert_refused_and_still_closes(client, words: str) -> None:
    """The next open is refused with the protection's words; the ETH position held meanwhile still closes."""
    refused = alert(client, "buy")
    assert refused.status == Execution.Status.SKIPPED and not refused.orders.exists()
    assert f"no order sent: {words}" in refused.reason, refused.reason
    closed = alert(client, "close", "ETHUSDT", "3000")
    assert closed.status == Execution.Status.FILLED and [o.purpose for o in closed.orders.all()] == ["close"]


def test_a_cooldown_refuses_the_next_open_through_the_webhook(strategy, committed_client, channel):
    strategy.cooldown_after_loss = 30
    strategy.save()
    alert(committed_client, "buy", "ETHUSDT", "3000")
    lose_once(committed_client)
    assert_refused_and_still_closes(committed_client, "cooldown after a loss: the trade closed at")
    assert len(limit_texts()) == 1 and "opens allowed again at" in limit_texts()[0]


def test_max_trades_per_day_refuses_the_next_open_through_the_webhook(strategy, committed_client, channel):
    strategy.max_trades_per_day = 2
    strategy.save()
    alert(committed_client, "buy", "ETHUSDT", "3000")
    alert(committed_client, "buy")
    assert_refused_and_still_closes(committed_client, "max trades per day: the strategy made 2 opening trades")
    reversal = alert(committed_client, "sell")  # closes the long, opens no short
    assert [o.purpose for o in reversal.orders.all()] == ["close"] and "the short was not opened" in reversal.reason
    assert len(limit_texts()) == 1


def test_a_loss_streak_refuses_the_next_open_through_the_webhook(strategy, committed_client, channel):
    strategy.loss_streak_limit = 2
    strategy.save()
    alert(committed_client, "buy", "ETHUSDT", "3000")
    lose_once(committed_client)
    assert alert(committed_client, "buy").status == Execution.Status.FILLED  # one loss: not yet
    alert(committed_client, "close", price="44000")
    assert_refused_and_still_closes(committed_client, "loss streak: 2 losing trades in a row")
    assert len(limit_texts()) == 1


def test_a_drawdown_locks_through_the_webhook_until_cleared_by_the_api(strategy, committed_client, channel, admin_user):
    from rest_framework.test import APIClient

    strategy.max_drawdown_pct = D("1")
    strategy.save()
    alert(committed_client, "buy", "ETHUSDT", "3000")
    lose_once(committed_client)  # about 111 of 10,000: 1.1 %
    assert_refused_and_still_closes(committed_client, "max drawdown reached: the strategy's realized P&L is")
    strategy.refresh_from_db()
    assert strategy.drawdown_locked_at is not None and len(limit_texts()) == 1
    api = APIClient()
    api.force_authenticate(admin_user)
    answer = api.post("/preferences/drawdown_lock", {"strategy": NAME, "value": None}, format="json")
    assert answer.status_code == 200 and answer.json()["drawdown_locked_at"] is None
    strategy.refresh_from_db()
    assert strategy.drawdown_locked_at is None and strategy.drawdown_since is not None
    assert alert(committed_client, "buy").status == Execution.Status.FILLED  # measured afresh: no drawdown since


def test_trading_hours_refuse_an_open_outside_them_through_the_webhook(strategy, committed_client):
    alert(committed_client, "buy", "ETHUSDT", "3000")
    elsewhere = DAYS[(timezone.now().weekday() + 2) % 7]
    strategy.trading_hours = f"{elsewhere} 00:00-24:00"
    strategy.save()
    assert_refused_and_still_closes(committed_client, f"trading hours: opens are allowed only {elsewhere} 00:00-24:00 (UTC)")
