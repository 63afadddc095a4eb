"""The dashboard's allocation-by-strategy chart: each symbol's open position counted for the strategy
whose execution last traded it, an empty state, and no extra query."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.ui.records import make_account, make_execution
from trading.models import Order, Position

pytestmark = pytest.mark.django_db


def bar(text: str, strategy: str) -> str:
    start = text.index(f'data-strategy="{strategy}"')
    return text[start:text.index("</li>", start)]


def test_it_shows_an_empty_state_without_open_positions(trader_client):
    text = trader_client.get("/ui/").content.decode()
    assert "Allocation by strategy" in text
    assert "No open positions: nothing is allocated." in text
    assert 'class="bars"' not in text


def test_it_attributes_each_symbol_to_the_strategy_that_last_traded_it(trader_client):
    make_account()  # an ETHUSDT short of 1.5 at a mark of 2490: 3,735
    make_execution(3, strategy="ALSAPRO 2", symbol="ETHUSDT")
    make_execution(2, strategy="TREND", symbol="ETHUSDT")  # the latest ETHUSDT trade: TREND holds it
    make_execution(1, strategy="ALSAPRO 2", symbol="BTCUSDT")
    later = make_execution(0, strategy="TREND", symbol="BTCUSDT")
    Order.objects.filter(execution=later).update(executed_qty=0, status="REJECTED")  # traded nothing
    make_execution(5, strategy="OTHER", symbol="BTCUSDT", exchange="binance")  # another exchange's order
    Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.1"), entry_price=Decimal("45000"))  # no mark: 4,500
    Position.objects.create(symbol="SOLUSDT", amount=Decimal("2"), entry_price=Decimal("150"), mark_price=Decimal("151"))
    text = trader_client.get("/ui/").content.decode()
    assert "4,500.00" in bar(text, "ALSAPRO 2") and "BTCUSDT" in bar(text, "ALSAPRO 2")
    assert "52.7 %" in bar(text, "ALSAPRO 2")  # 4500 ÷ (4500 + 3735 + 302)
    assert "3,735.00" in bar(text, "TREND") and "43.8 %" in bar(text, "TREND")
    assert "302.00" in bar(text, "(unattributed)") and "3.5 %" in bar(text, "(unattributed)")
    assert "SOLUSDT" in bar(text, "(unattributed)")
    assert 'data-strategy="OTHER"' not in text
    assert text.index('data-strategy="ALSAPRO 2"') < text.index('data-strategy="TREND"')
    assert "last traded it" in text


def test_it_refreshes_the_chart_with_the_live_fragment(trader_client):
    make_account()
    make_execution(1, symbol="ETHUSDT")
    text = trader_client.get("/ui/", headers={"HX-Request": "true"}).content.decode()
    assert 'data-strategy="ALSAPRO 1"' in text and "100.0 %" in text


def test_it_reads_no_extra_query_for_the_chart(trader_client, django_assert_max_num_queries):
    make_account()
    for n in range(30):
        make_execution(n, symbol=("BTCUSDT", "ETHUSDT", "SOLUSDT")[n % 3], strategy=f"S{n % 4}",
                       received_at=timezone.now() - timedelta(minutes=n))
    for symbol in ("BTCUSDT", "SOLUSDT"):
        Position.objects.create(symbol=symbol, amount=Decimal("1"), entry_price=Decimal("100"))
    with django_assert_max_num_queries(14):  # as the dashboard without the chart (tests/ui/test_dashboard.py): none of its own
        text = trader_client.get("/ui/").content.decode()
    assert text.count("data-strategy=") == 3
    with django_assert_max_num_queries(10):
        trader_client.get("/ui/", headers={"HX-Request": "true"})
