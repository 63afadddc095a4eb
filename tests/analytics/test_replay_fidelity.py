"""#21's first "done when": a replay of alerts that really traded, under unchanged settings, reproduces
the recorded fills within the configured slippage. The alerts go through POST /webhook → worker → the
Binance adapter → the fake exchange (the fills recorded as orders), then the replay runs over the same
minutes with the fake's klines."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.replay_runs import replay_request
from tests.support.queue import run_queued_jobs
from tests.support.webhook import alert, strategy_create, webhook_client  # noqa: F401 (the `client` fixture)
from trading.models import Order

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)
QUANTITY = D("0.010")


def traded(client, binance_fake) -> tuple[D, list[Order]]:
    """Three real round trips on BTCUSDT at moving prices; their realized P&L and their orders."""
    for open_price, close_price in (("50000", "50500"), ("50400", "50100"), ("50100", "50900")):
        binance_fake.set_price("BTCUSDT", open_price)
        assert alert(client, quantity=str(QUANTITY), price=open_price).status == "filled"
        binance_fake.set_price("BTCUSDT", close_price)
        assert alert(client, "close", price=close_price).status == "filled"
    orders = list(Order.objects.filter(execution__isnull=False).order_by("id"))
    return sum((order.realized_pnl for order in orders), D(0)), orders


def flat_klines(binance_fake, start, end, price: str = "50000") -> None:
    """Quiet bars over the period: no stop is configured, so they decide nothing here."""
    minute = start.replace(second=0, microsecond=0)
    rows = []
    while minute < end:
        rows.append((int(minute.timestamp()) * 1000, price, price, price, price))
        minute += timedelta(minutes=1)
    binance_fake.kline_path["BTCUSDT"] = rows


@pytest.mark.parametrize("slippage_bps", [D(0), D(10)])
def test_a_replay_under_unchanged_settings_reproduces_the_recorded_fills_within_the_slippage(
        client, binance_fake, slippage_bps):
    strategy_create(sizing="signal", stop_loss=None, take_profit=None)
    start = timezone.now() - timedelta(minutes=5)
    realized, orders = traded(client, binance_fake)
    assert len(orders) == 6 and realized == D("10")  # +5, −3, +8
    end = timezone.now()
    flat_klines(binance_fake, start, end)

    run = replay_request("ALSAPRO 1", start, end, {}, slippage_bps, None)
    run_queued_jobs()
    run.refresh_from_db()
    assert run.status == "done", run.error
    replayed = run.outcome.recorded
    assert run.outcome.alerts == 6 and replayed.trades == 3
    # Each of the 6 fills moves by at most the slippage against the trader: 0.01 BTC × ~50,000 × bps.
    bound = sum((order.quantity * order.avg_price for order in orders), D(0)) * slippage_bps / D(10000)
    assert abs(replayed.realized_pnl - realized) <= bound
    if slippage_bps == 0:
        assert replayed.realized_pnl == realized  # exactly the recorded fills
    else:
        assert replayed.realized_pnl < realized  # and never in the trader's favour
