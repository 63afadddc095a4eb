"""The paper market between alerts (PAPER_PRICE_FEED): the user data stream reads Binance's public mark
prices (here the fake's, over HTTP) every PAPER_PRICE_FEED_SECONDS, so a paper stop, take-profit or
resting limit entry triggers where the market goes, not only at the next alert's price."""

import logging
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection

from tests.support.stream import eventually, stream_heard
from tests.support.webhook import alert, strategy_create, webhook_client  # noqa: F401 (`client`)
from trading.exchange import get_exchange, reset_exchange
from trading.exchange.price_feed import PriceFeed
from trading.live import stream_run
from trading.models import Execution, Order, Position, ProtectiveOrder

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def paper_fed(client, binance_fake, settings) -> Iterator[None]:
    """The paper exchange, its prices fed by the fake's mark prices, and its stream running."""
    settings.EXCHANGE = "paper"
    settings.PAPER_PRICE_FEED = binance_fake.url
    settings.PAPER_PRICE_FEED_SECONDS = 0.2
    reset_exchange()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: (stream_run(get_exchange(), stop), connection.close()), daemon=True)
    thread.start()
    eventually(stream_heard, within=3)
    yield
    stop.set()
    thread.join(timeout=5)
    reset_exchange()


def test_the_feed_triggers_a_paper_stop_without_an_alert(client, binance_fake, paper_fed):
    strategy_create(stop_loss=D(2))
    alert(client)
    held = Position.objects.get(symbol="BTCUSDT").amount
    binance_fake.set_price("BTCUSDT", "44000")  # below the stop at 44,100
    eventually(lambda: Order.objects.filter(source=Order.Source.STOP_LOSS).exists(), within=3)
    fill = Order.objects.get(source=Order.Source.STOP_LOSS)
    assert (fill.executed_qty, fill.avg_price) == (held, D(44000))
    assert ProtectiveOrder.objects.get(kind="stop_loss").status == "triggered"
    assert Position.objects.get(symbol="BTCUSDT").amount == 0


def test_the_feed_fills_a_resting_paper_limit_entry(client, binance_fake, paper_fed):
    strategy_create(sizing="allocation", allocation_pct=D(10), entry="limit", entry_offset_pct=D(1), entry_timeout=5)
    timer = threading.Timer(0.5, binance_fake.set_price, ("BTCUSDT", "44500"))
    timer.start()
    execution = alert(client)
    timer.join()
    assert (execution.status, execution.orders.get().avg_price) == (Execution.Status.FILLED, D(44550))


def test_without_a_feed_the_paper_market_stays_where_the_alerts_left_it(client, binance_fake, settings):
    settings.EXCHANGE = "paper"
    reset_exchange()
    assert get_exchange().user_stream().feed is None


# --- the feed itself ---------------------------------------------------------------------------------
def test_it_reads_only_the_watched_symbols_and_only_when_due(binance_fake):
    binance_fake.set_price("ETHUSDT", "3100")
    feed = PriceFeed(binance_fake.url, every=60)
    assert feed.due(set()) == {}  # nothing watched: no request
    assert binance_fake.requests_to("/fapi/v1/premiumIndex") == []
    assert feed.due({"ETHUSDT", "NOSUCHUSDT"}) == {"ETHUSDT": D(3100)}
    assert feed.due({"ETHUSDT"}) == {}  # not due again for a minute
    assert len(binance_fake.requests_to("/fapi/v1/premiumIndex")) == 1


def test_a_failing_feed_is_said_once_and_moves_nothing(caplog):
    feed = PriceFeed("http://127.0.0.1:9", every=0)  # nothing listens on the discard port
    with caplog.at_level(logging.WARNING):
        assert feed.due({"BTCUSDT"}) == {}
        assert feed.due({"BTCUSDT"}) == {}
    assert len([r for r in caplog.records if "paper price feed" in r.getMessage()]) == 1
