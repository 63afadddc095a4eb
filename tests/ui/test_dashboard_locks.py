"""The dashboard's Locks panel (issue #17): each enabled strategy whose opens a protection locks now,
with the protection, until when and why; polled on its own by the same view."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from preferences.models import StrategyPreference
from trading.models import Execution, Order, Signal

pytestmark = pytest.mark.django_db

LOCKS = {"HX-Request": "true", "HX-Target": "locks"}


def loss(strategy: StrategyPreference, n: int) -> None:
    at = timezone.now() - timedelta(minutes=5)
    signal = Signal.objects.create(action="close", symbol="BTCUSDT", strategy=strategy.name, status="done",
                                   received_at=at, idempotency_key=f"locks-{n}")
    execution = Execution.objects.create(signal=signal, strategy=strategy.name, symbol="BTCUSDT", exchange="paper",
                                         status="filled", received_at=at)
    Order.objects.create(execution=execution, purpose="close", client_order_id=f"locks-{n}", symbol="BTCUSDT", side="SELL",
                         quantity=Decimal("0.1"), executed_qty=Decimal("0.1"), realized_pnl=Decimal("-12.5"),
                         status="FILLED", acknowledged_at=at)


def test_it_shows_each_locked_strategy_with_its_protection(trader_client):
    cooling = StrategyPreference.objects.create(name="COOLING", cooldown_after_loss=30)
    loss(cooling, 1)
    StrategyPreference.objects.create(name="DRAWN DOWN", max_drawdown_pct=Decimal("5"),
                                      drawdown_locked_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    StrategyPreference.objects.create(name="FREE", cooldown_after_loss=30)  # no loss: not locked
    off = StrategyPreference.objects.create(name="SWITCHED OFF", enabled=False, cooldown_after_loss=30)
    loss(off, 2)
    text = trader_client.get("/ui/").content.decode()
    assert ">Locks</h2>" in text and 'hx-trigger="every 30s"' in text
    assert ">COOLING</a>" in text and 'data-lock="cooldown after a loss"' in text and "lost 12.5 USDT" in text
    assert ">DRAWN DOWN</a>" in text and "cleared by an operator" in text
    panel = trader_client.get("/ui/", headers=LOCKS).content.decode()  # the executions above name strategies too
    assert "COOLING" in panel and "FREE" not in panel and "SWITCHED OFF" not in panel


def test_it_shows_no_panel_when_nothing_is_locked(trader_client):
    StrategyPreference.objects.create(name="FREE", cooldown_after_loss=30)
    text = trader_client.get("/ui/").content.decode()
    assert 'id="locks"' in text and ">Locks</h2>" not in text  # still polled: a lock may engage


def test_it_answers_the_locks_poll_with_its_fragment_only(trader_client, django_assert_max_num_queries):
    for n in range(5):
        loss(StrategyPreference.objects.create(name=f"S{n}", cooldown_after_loss=30), n)
    StrategyPreference.objects.create(name="PLAIN")
    # The session, the user, the strategies with a protection, one query per protection set.
    with django_assert_max_num_queries(3 + 5):
        response = trader_client.get("/ui/", headers=LOCKS)
    text = response.content.decode()
    assert response.status_code == 200 and "<html" not in text and "Open positions" not in text
    assert text.count('data-lock="cooldown after a loss"') == 5 and "HX-Target" in response["Vary"]
