from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.models import AccountSnapshot
from preferences.models import StrategyPreference
from trading.models import (
    Execution,
    Order,
    PaperAccount,
    PaperOrder,
    PaperPosition,
    PaperPrice,
    Position,
    Signal,
    SymbolLane,
    SymbolSetting,
    WorkerHeartbeat,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def records():
    preference = StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"])
    signal = Signal.objects.create(action="buy", symbol="BTCUSDT", strategy="ALSAPRO 1", status="done", idempotency_key="k1")
    execution = Execution.objects.create(
        signal=signal, strategy="ALSAPRO 1", symbol="BTCUSDT", exchange="paper", received_at=timezone.now()
    )
    order = Order.objects.create(
        execution=execution, leg=1, purpose="open", client_order_id="at-1-1", symbol="BTCUSDT", side="BUY",
        quantity=Decimal("0.002"),
    )
    return [
        preference, signal, execution, order,
        Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.002"), entry_price=Decimal("45000")),
        AccountSnapshot.objects.create(
            taken_at=timezone.now(), exchange="paper", wallet_balance=1, available_balance=1, equity=1, unrealized_pnl=0
        ),
        PaperAccount.objects.create(wallet_balance=Decimal("10000")),
        PaperPosition.objects.create(symbol="BTCUSDT", amount=Decimal("0.002"), entry_price=Decimal("45000")),
        PaperOrder.objects.create(
            client_order_id="at-1-1", symbol="BTCUSDT", side="BUY", quantity=1, avg_price=1, executed_qty=1
        ),
        PaperPrice.objects.create(symbol="BTCUSDT", price=Decimal("45000")),
        SymbolLane.objects.create(symbol="BTCUSDT"),
        SymbolSetting.objects.create(account="paper", symbol="BTCUSDT", leverage=5, margin_type="cross"),
        WorkerHeartbeat.objects.create(name="worker", beat_at=timezone.now()),
    ]


def test_it_opens_the_list_and_detail_page_of_every_model(admin_client, records):
    for record in records:
        meta = record._meta
        changelist = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert changelist.status_code == 200, meta.label
        detail = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[record.pk]))
        assert detail.status_code == 200, meta.label


def test_it_keeps_system_records_read_only(admin_client, records):
    signal = records[1]
    response = admin_client.post(reverse("admin:trading_signal_change", args=[signal.pk]), {"status": "queued"})
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:trading_order_add")).status_code == 403


def test_it_creates_a_strategy_with_products_and_a_hashed_passphrase(admin_client):
    response = admin_client.post(reverse("admin:preferences_strategypreference_add"), {
        "name": "ALSAPRO 2", "enabled": "on", "products": "btcusdt, ETHUSDT", "direction": "long",
        "leverage": "5", "margin_type": "isolated", "sizing": "allocation", "allocation_pct": "25", "price_tolerance_pct": "5",
        "new_passphrase": "a-long-strategy-secret", "notes": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    preference = StrategyPreference.objects.get(name="ALSAPRO 2")
    assert preference.products == ["BTCUSDT", "ETHUSDT"]
    assert preference.allocation_pct == Decimal("25")
    assert preference.check_passphrase("a-long-strategy-secret")
    assert "a-long-strategy-secret" not in admin_client.get(
        reverse("admin:preferences_strategypreference_change", args=[preference.pk])
    ).content.decode()


@pytest.mark.parametrize("field, value, message", [
    ("leverage", "126", "less than or equal to 125"),
    ("leverage", "0", "greater than or equal to 1"),
    ("allocation_pct", "0", "greater than or equal to 0.0001"),
    ("allocation_pct", "100.5", "less than or equal to 100"),
    ("products", "BTC-USDT", "not a futures symbol: BTC-USDT"),
    ("new_passphrase", "short", "at least 12 characters"),
])
def test_it_explains_a_bad_strategy_value(admin_client, field, value, message):
    data = {"name": "S", "products": "BTCUSDT", "direction": "both", "leverage": "1", "margin_type": "cross",
            "sizing": "allocation", "allocation_pct": "10", "price_tolerance_pct": "5", field: value}
    response = admin_client.post(reverse("admin:preferences_strategypreference_add"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not StrategyPreference.objects.exists()
