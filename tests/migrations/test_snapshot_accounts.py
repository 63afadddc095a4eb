"""analytics/0002 gave AccountSnapshot an `account` column, blank in every old row, and every reader
asks for the running account's snapshots: the equity history before the upgrade was unreachable.
0006_snapshot_accounts fills it with the account each snapshot was read from."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import override_settings

from analytics.models import AccountSnapshot
from tests.migrations.conftest import newest, schema_at
from trading.exchange.binance import BinanceExchange

D = Decimal
KEY = "a-binance-api-key-of-this-deployment"


def snapshot_old(state, exchange: str, equity: str) -> int:
    model = state.apps.get_model("analytics", "AccountSnapshot")
    return model.objects.create(taken_at=datetime(2026, 11, 24, 3, tzinfo=UTC), exchange=exchange, asset="USDT",
                                wallet_balance=D(equity), available_balance=D(equity), equity=D(equity),
                                unrealized_pnl=D(0)).pk


def binance_account(testnet: bool) -> str:
    return BinanceExchange(api_key=KEY, api_secret="s", base_url="http://127.0.0.1:1", timeout=1, recv_window=5000,
                           testnet=testnet).account_id


@pytest.mark.parametrize("testnet", [True, False], ids=["testnet key", "live key"])
def test_it_gives_old_snapshots_the_account_they_were_read_from(migrator, testnet):
    old = schema_at(migrator, [("analytics", "0001_initial")])
    paper = snapshot_old(old, "paper", "10000.5")
    binance = snapshot_old(old, "binance", "2500.25")
    # Written after 0002 by code that named its account: another key's, kept as it is.
    between = migrator.apply_tested_migration([("analytics", "0005_snapshot_account_index")])
    other = snapshot_old(between, "binance", "7")
    between.apps.get_model("analytics", "AccountSnapshot").objects.filter(pk=other).update(account="binance-live-0123456789")

    # Without a configured key no Binance account can be told: those stay blank.
    with override_settings(BINANCE_API_KEY=""):
        migrator.apply_tested_migration(newest("analytics"))
    rows = {row.pk: row for row in AccountSnapshot.objects.all()}
    assert (rows[paper].account, rows[paper].exchange, rows[paper].equity) == ("paper", "paper", D("10000.5"))
    assert rows[binance].account == ""

    # Backward is a no-op: nothing is blanked again. Forward again, with this deployment's key:
    back = migrator.apply_tested_migration([("analytics", "0005_snapshot_account_index")])
    assert back.apps.get_model("analytics", "AccountSnapshot").objects.get(pk=paper).account == "paper"
    with override_settings(BINANCE_API_KEY=KEY, BINANCE_USE_TESTNET=testnet):
        migrator.apply_tested_migration(newest("analytics"))
    rows = {row.pk: row for row in AccountSnapshot.objects.all()}
    # Named as the adapter names the account it trades: the readers' filter finds it.
    assert (rows[binance].account, rows[binance].equity) == (binance_account(testnet), D("2500.25"))
    assert rows[other].account == "binance-live-0123456789"
    assert rows[paper].account == "paper"
