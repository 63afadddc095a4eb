"""trading 0018_accounts: an existing deployment gets one account, `default` (the environment's: no
keys in its row, not halted), and going back removes the registry."""

from django.db import connection

from tests.migrations.conftest import schema_at


def test_it_gives_an_existing_deployment_its_default_account_and_goes_back(migrator):
    schema_at(migrator, [("trading", "0017_limit_orders")])
    new = migrator.apply_tested_migration([("trading", "0018_accounts")])
    [account] = new.apps.get_model("trading", "Account").objects.all()
    assert (account.name, account.exchange, account.api_key, account.api_secret, account.key_hint, account.halted) == (
        "default", "paper", "", "", "", False)
    [row] = new.apps.get_model("trading", "HistoricalAccount").objects.all()
    assert (row.name, row.history_type, row.halted) == ("default", "+", False)
    assert not hasattr(row, "api_key") and not hasattr(row, "api_secret")  # the history never holds the keys

    migrator.apply_tested_migration([("trading", "0017_limit_orders")])
    tables = connection.introspection.table_names()
    assert "trading_account" not in tables and "trading_historicalaccount" not in tables
