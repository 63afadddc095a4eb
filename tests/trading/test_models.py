from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from preferences.models import StrategyPreference
from trading.models import Execution, Order, Signal

pytestmark = pytest.mark.django_db


def test_it_allows_one_signal_per_idempotency_key():
    Signal.objects.create(idempotency_key="tv-123")
    with pytest.raises(IntegrityError), transaction.atomic():
        Signal.objects.create(idempotency_key="tv-123")
    # Attempts that never parsed carry no key, and any number of them may be stored.
    Signal.objects.create(idempotency_key=None)
    Signal.objects.create(idempotency_key=None)
    assert Signal.objects.count() == 3


def test_it_allows_one_order_per_client_order_id():
    signal = Signal.objects.create(idempotency_key="k")
    execution = Execution.objects.create(
        signal=signal, strategy="s", symbol="BTCUSDT", exchange="paper", received_at=timezone.now()
    )
    Order.objects.create(
        execution=execution, leg=1, purpose="open", client_order_id="at-9-1", symbol="BTCUSDT", side="BUY", quantity=Decimal("1")
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(
            execution=execution, leg=2, purpose="open", client_order_id="at-9-1", symbol="BTCUSDT", side="BUY",
            quantity=Decimal("1"),
        )


@pytest.mark.parametrize(
    "field, value", [("leverage", 0), ("leverage", 126), ("allocation_pct", Decimal("0")), ("allocation_pct", Decimal("100.01"))]
)
def test_it_enforces_strategy_bounds_in_the_database(field, value):
    with pytest.raises(IntegrityError), transaction.atomic():
        StrategyPreference.objects.create(name="x", **{field: value})


@pytest.mark.parametrize("field, value", [("leverage", 126), ("allocation_pct", Decimal("-1")), ("direction", "sideways")])
def test_it_explains_strategy_bounds_on_validation(field, value):
    preference = StrategyPreference(name="x", **{field: value})
    with pytest.raises(ValidationError) as error:
        preference.full_clean()
    assert field in error.value.message_dict


def test_it_keeps_amounts_as_exact_decimals():
    signal = Signal.objects.create(idempotency_key="d", quantity=Decimal("0.0010000001"), price=Decimal("45000.12345678"))
    signal.refresh_from_db()
    assert signal.quantity == Decimal("0.0010000001")
    assert signal.price == Decimal("45000.12345678")


def test_it_computes_stage_latencies_in_milliseconds():
    now = timezone.now()
    signal = Signal.objects.create(idempotency_key="t")
    execution = Execution(
        signal=signal, received_at=now, queued_at=now + timezone.timedelta(milliseconds=2),
        started_at=now + timezone.timedelta(milliseconds=30), sent_at=now + timezone.timedelta(milliseconds=31),
        acknowledged_at=now + timezone.timedelta(milliseconds=80), finished_at=now + timezone.timedelta(milliseconds=85),
    )
    assert execution.latency_ms == Decimal("80.0")
    assert execution.stage_ms == {"queue": Decimal("2.0"), "dispatch": Decimal("28.0"), "prepare": Decimal("1.0"),
                                  "exchange": Decimal("49.0"), "total": Decimal("85.0")}


@pytest.mark.parametrize("values", [
    {},  # an attempt that never parsed: every default
    {"payload": {"action": "buy", "note": "ünïcode ✓"}, "action": "buy", "symbol": "BTCUSDT", "quantity": Decimal("0.001"),
     "price": Decimal("45000.5"), "strategy": "S", "sender_time": timezone.now(), "position_size": Decimal("-1.25"),
     "stop_loss": Decimal("44000"), "source_ip": "2001:db8::1", "status": Signal.Status.QUEUED, "http_status": 202,
     "queued_at": timezone.now(), "intake_us": 1234, "comment": "c", "market_position": "long"},
], ids=["defaults", "a full signal"])
def test_insert_writes_what_create_writes(values):
    """Signal.objects.insert (the webhook's one-statement INSERT) against the ORM's create()."""
    preference = StrategyPreference.objects.create(name="S")
    inserted = Signal.objects.get(pk=Signal.objects.insert(**values, preference_id=preference.pk, idempotency_key="a"))
    created = Signal.objects.create(**values, preference=preference, idempotency_key="b")
    created.refresh_from_db()
    differ = {"id", "idempotency_key", "received_at", "updated_at"}
    fields = [field.attname for field in Signal._meta.concrete_fields if field.attname not in differ]
    assert {name: getattr(inserted, name) for name in fields} == {name: getattr(created, name) for name in fields}
    assert abs(inserted.received_at - created.received_at).total_seconds() < 5
    assert inserted.updated_at is not None


def test_insert_refuses_a_second_signal_with_the_same_key_and_an_unknown_field():
    Signal.objects.insert(idempotency_key="tv-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Signal.objects.insert(idempotency_key="tv-1")
    with pytest.raises(TypeError, match="no field"):
        Signal.objects.insert(preference="S")  # by attname only: preference_id
