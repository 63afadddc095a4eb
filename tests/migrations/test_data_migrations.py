"""The migrations that change tables holding rows: each built on a database with a book in it
(tests/migrations/records.py), migrated forward and back, every row and column read again."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from tests.migrations.conftest import schema_at
from tests.migrations.records import OPEN_KEY, T0, assert_kept, book_old, rows_all

D = Decimal


def test_it_carries_orders_and_symbol_settings_through_trading_0003(migrator):
    old = schema_at(migrator, [("trading", "0002_schedules")])
    book = book_old(old)
    before = rows_all(old)
    new = migrator.apply_tested_migration([("trading", "0003_exactly_once")])
    after = rows_all(new)
    assert_kept(before, after, renamed={"trading.SymbolSetting.exchange": "account"})
    orders = after["trading.Order"]
    # Orders recorded before were folded into the position whole: what they filled is applied.
    assert (orders[book["order"]]["applied_qty"], orders[book["unsent"]]["applied_qty"]) == (D("0.111"), D(0))
    assert orders[book["order"]]["sent_stamp"] is None
    assert [row["account"] for row in after["trading.SymbolSetting"].values()] == ["paper"]  # the paper account's id

    back = migrator.apply_tested_migration([("trading", "0002_schedules")])
    assert_kept(before, rows_all(back))


def test_it_marks_old_orders_as_ours_through_trading_0008(migrator):
    old = schema_at(migrator, [("trading", "0007_protection")])
    book = book_old(old)
    old.apps.get_model("trading", "ProtectiveOrder").objects.create(
        execution_id=book["execution"], symbol="BTCUSDT", kind="stop_loss", side="SELL", trigger_price=D("44000"),
        client_id="at-1-sl", exchange_id="990001", status="active")
    old.apps.get_model("trading", "WorkerHeartbeat").objects.create(name="worker-1", host="a:1", beat_at=T0)
    before = rows_all(old)
    new = migrator.apply_tested_migration([("trading", "0008_exchange_reported_orders")])
    after = rows_all(new)
    assert_kept(before, after)
    assert {row["source"] for row in after["trading.Order"].values()} == {"signal"}  # sent by us, all of them
    assert [row["order_id"] for row in after["trading.ProtectiveOrder"].values()] == [""]
    assert [row["detail"] for row in after["trading.WorkerHeartbeat"].values()] == [""]
    assert after["trading.Position"][book["position"]]["reconciled_at"] is None

    back = migrator.apply_tested_migration([("trading", "0007_protection")])
    assert_kept(before, rows_all(back))


def test_it_still_refuses_a_duplicate_alert_through_trading_0009(migrator):
    old = schema_at(migrator, [("trading", "0008_exchange_reported_orders"), ("preferences", "0006_strategy_history")])
    book_old(old)
    before = rows_all(old)
    new = migrator.apply_tested_migration([("trading", "0009_signal_fewer_indexes")])
    assert_kept(before, rows_all(new))
    assert_duplicate_refused(new)

    back = migrator.apply_tested_migration([("trading", "0008_exchange_reported_orders")])
    assert_kept(before, rows_all(back))
    assert_duplicate_refused(back)


def assert_duplicate_refused(state) -> None:
    signals = state.apps.get_model("trading", "Signal").objects
    with pytest.raises(IntegrityError), transaction.atomic():
        signals.create(payload={}, idempotency_key=OPEN_KEY)
    signals.create(payload={}, idempotency_key=None)  # refused alerts have none: any number of them
    assert signals.filter(idempotency_key=OPEN_KEY).count() == 1


def test_it_keeps_each_strategys_sizing_and_adds_no_protection_through_preferences_0007(migrator):
    old = schema_at(migrator, [("preferences", "0006_strategy_history")])
    book = book_old(old, passphrase_hash="9f" * 32)  # a strategy passphrase's SHA-256, as it was stored
    strategies = old.apps.get_model("preferences", "StrategyPreference").objects
    by_signal = strategies.create(name="By the alert", sizing="signal", products=["ETHUSDT"]).pk
    before = rows_all(old)
    new = migrator.apply_tested_migration([("preferences", "0007_sizing_and_protections")])
    after = rows_all(new)["preferences.StrategyPreference"]
    assert_kept(before, rows_all(new))
    assert (after[book["strategy"]]["sizing"], after[by_signal]["sizing"]) == ("allocation", "signal")
    protections = ("risk_pct", "max_position_usdt", "cooldown_after_loss", "max_trades_per_day", "loss_streak_limit",
                   "max_drawdown_pct", "drawdown_locked_at", "drawdown_since")
    for pk in (book["strategy"], by_signal):
        assert {field: after[pk][field] for field in protections} == dict.fromkeys(protections)  # all off
        assert after[pk]["trading_hours"] == ""  # always
    assert after[book["strategy"]]["passphrase_hash"] == "9f" * 32
    # The widened constraint: the new words, and still nothing else.
    new_strategies = new.apps.get_model("preferences", "StrategyPreference").objects
    new_strategies.create(name="Risk", sizing="risk")
    with pytest.raises(IntegrityError), transaction.atomic():
        new_strategies.create(name="Bogus", sizing="bogus")

    risk = new_strategies.get(name="Risk").pk
    keyed = new_strategies.create(name="Keyed", passphrase_hash="hmac-sha256$" + "ab" * 32).pk
    back = migrator.apply_tested_migration([("preferences", "0006_strategy_history")])
    # The old constraint knows neither 'auto' nor 'risk': going back sizes them by allocation.
    back_strategies = back.apps.get_model("preferences", "StrategyPreference").objects
    assert back_strategies.get(pk=risk).sizing == "allocation"
    assert back_strategies.get(pk=keyed).passphrase_hash == "-" * 64  # fits, and matches no passphrase
    back_strategies.filter(pk__in=[risk, keyed]).delete()
    assert_kept(before, rows_all(back))
