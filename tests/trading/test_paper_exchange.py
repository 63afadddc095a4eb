from decimal import Decimal

import pytest

from trading.exchange import OrderRequest, PermanentError
from trading.exchange.paper import PaperExchange
from trading.models import PaperAccount

pytestmark = pytest.mark.django_db

FEE = Decimal("0.0005")


@pytest.fixture
def paper() -> PaperExchange:
    return PaperExchange(starting_balance=Decimal("10000"), taker_fee=FEE)


def order(
    side: str, quantity: str, price: str | None = "45000", *, cid: str, reduce_only: bool = False, symbol: str = "BTCUSDT"
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=side,
        quantity=Decimal(quantity),
        client_order_id=cid,
        reduce_only=reduce_only,
        price_hint=Decimal(price) if price else None,
    )


def test_it_fills_a_market_order_at_the_signal_price_and_charges_the_taker_fee(paper):
    result = paper.place_market_order(order("BUY", "0.010", cid="a1"), stamp=0)
    assert result.state == "FILLED"
    assert result.executed_qty == Decimal("0.010")
    assert result.avg_price == Decimal("45000")
    assert result.commission == Decimal("0.010") * Decimal("45000") * FEE
    assert PaperAccount.objects.get().wallet_balance == Decimal("10000") - Decimal("0.225")
    [position] = paper.get_positions()
    assert (position.amount, position.entry_price) == (Decimal("0.010"), Decimal("45000"))


def test_it_averages_entries_and_realizes_pnl_on_close(paper):
    paper.place_market_order(order("BUY", "0.010", "40000", cid="a1"), stamp=0)
    paper.place_market_order(order("BUY", "0.010", "50000", cid="a2"), stamp=0)
    assert paper.get_positions()[0].entry_price == Decimal("45000")
    result = paper.place_market_order(order("SELL", "0.020", "46000", cid="a3", reduce_only=True), stamp=0)
    assert result.realized_pnl == Decimal("20")  # (46000 - 45000) × 0.02
    assert paper.get_positions() == []
    fees = (Decimal("0.01") * 40000 + Decimal("0.01") * 50000 + Decimal("0.02") * 46000) * FEE
    assert paper.get_balance().wallet_balance == Decimal("10000") + 20 - fees


def test_it_flips_a_position_when_an_order_is_larger_than_it(paper):
    paper.place_market_order(order("BUY", "0.010", "45000", cid="a1"), stamp=0)
    result = paper.place_market_order(order("SELL", "0.030", "44000", cid="a2"), stamp=0)
    assert result.realized_pnl == Decimal("-10")
    [position] = paper.get_positions()
    assert (position.amount, position.entry_price) == (Decimal("-0.020"), Decimal("44000"))


def test_it_answers_a_resent_client_order_id_with_the_original_fill(paper):
    first = paper.place_market_order(order("BUY", "0.010", cid="same"), stamp=0)
    again = paper.place_market_order(order("BUY", "0.010", cid="same"), stamp=0)
    assert again == first
    assert paper.get_positions()[0].amount == Decimal("0.010")
    assert paper.get_order("BTCUSDT", "same", stamp=None) == first
    assert paper.get_order("BTCUSDT", "other", stamp=None) is None


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (order("BUY", "0.0015", cid="x"), "-1111"),  # off the 0.001 step
        (order("BUY", "0.001", cid="x"), "-4164"),  # 45 USDT < 100 USDT minimum notional
        (order("SELL", "0.010", cid="x", reduce_only=True), "-2022"),  # nothing to reduce
        (order("BUY", "5", cid="x"), "-2019"),  # 225,000 USDT at 20x needs 11,250 USDT of margin
        (order("BUY", "1", cid="x", symbol="NOPEUSDT"), "-1121"),
    ],
)
def test_it_refuses_what_binance_would_refuse(paper, request_, code):
    with pytest.raises(PermanentError) as refused:
        paper.place_market_order(request_, stamp=0)
    assert refused.value.code == code
    assert refused.value.reason
    assert paper.get_positions() == []


def test_it_has_no_price_before_any_signal_carried_one(paper):
    with pytest.raises(PermanentError, match="no price for ETHUSDT"):
        paper.place_market_order(order("BUY", "0.010", None, cid="x", symbol="ETHUSDT"), stamp=0)


def test_it_reports_unrealized_pnl_at_the_last_price_seen(paper):
    paper.set_leverage("BTCUSDT", 10)
    paper.place_market_order(order("BUY", "0.100", "45000", cid="a1"), stamp=0)
    paper.observe_price("BTCUSDT", Decimal("46000"))
    balance = paper.get_balance()
    assert balance.unrealized_pnl == Decimal("100")
    assert balance.equity == balance.wallet_balance + 100
    assert balance.available_balance == balance.equity - Decimal("450")  # 4500 notional at 10x
