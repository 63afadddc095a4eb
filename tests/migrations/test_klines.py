"""analytics 0007_klines: a new table, empty on an existing deployment (rolling-safe: the previous
release never touches it), one row per symbol and minute; going back drops it."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from tests.migrations.conftest import schema_at

BEFORE = ("analytics", "0006_snapshot_accounts")
KLINES = ("analytics", "0007_klines")


def test_it_adds_an_empty_klines_table_of_one_row_a_minute_and_goes_back(migrator):
    old = schema_at(migrator, [BEFORE])
    snapshot = old.apps.get_model("analytics", "AccountSnapshot").objects.create(
        taken_at=datetime(2026, 11, 24, tzinfo=UTC), exchange="paper", account="paper", wallet_balance=Decimal(1),
        available_balance=Decimal(1), equity=Decimal(1), unrealized_pnl=Decimal(0))
    assert "analytics_kline" not in connection.introspection.table_names()

    new = migrator.apply_tested_migration([KLINES])
    kline = new.apps.get_model("analytics", "Kline")
    assert not kline.objects.exists()  # an existing deployment: empty until imported
    minute = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
    prices = {"open": Decimal("45000.12345678"), "high": Decimal("45010"), "low": Decimal("44990.5"),
              "close": Decimal("45005"), "volume": Decimal("1234.5678901234")}
    kline.objects.create(symbol="BTCUSDT", open_time=minute, **prices)
    kline.objects.create(symbol="ETHUSDT", open_time=minute, **prices)
    with pytest.raises(IntegrityError), transaction.atomic():
        kline.objects.create(symbol="BTCUSDT", open_time=minute, **prices)
    row = kline.objects.get(symbol="BTCUSDT")
    assert (row.open_time, row.open, row.volume) == (minute, prices["open"], prices["volume"])  # exact Decimals
    assert new.apps.get_model("analytics", "AccountSnapshot").objects.get(pk=snapshot.pk).account == "paper"

    back = migrator.apply_tested_migration([BEFORE])
    assert "analytics_kline" not in connection.introspection.table_names()
    assert back.apps.get_model("analytics", "AccountSnapshot").objects.filter(pk=snapshot.pk).exists()
