"""Snapshots taken before 0002 have a blank `account`, and every reader asks for the running
account's: their equity history was unreachable after the upgrade. Each gets the account it was
read from:

- `exchange = 'paper'`: the paper exchange's account, `paper`;
- `exchange = 'binance'`: the account of the key this deployment is configured with
  (BINANCE_API_KEY, BINANCE_USE_TESTNET), named the way the adapter names it — a digest of the key,
  no network call. Without a configured key they stay blank: no account can be told.

Backward: nothing (a no-op). 0002's column stays, and a filled account is as true before this
migration as after; blanking them again would only hide the history anew.
"""

import hashlib

from django.conf import settings
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

# Frozen copy of BinanceExchange's naming (trading/exchange/binance.py) as of this migration: app code
# may change, a migration must keep meaning what it meant. tests/migrations/test_snapshot_accounts.py
# checks both still agree.


def binance_account_id(api_key: str, testnet: bool) -> str:
    key_digest = hashlib.sha256(api_key.encode()).hexdigest()[:10]
    return f"binance-{'testnet' if testnet else 'live'}-{key_digest}"


def snapshot_accounts_fill(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    snapshots = apps.get_model("analytics", "AccountSnapshot").objects.using(schema_editor.connection.alias)
    blank = snapshots.filter(account="")
    blank.filter(exchange="paper").update(account="paper")
    api_key = getattr(settings, "BINANCE_API_KEY", "")
    if api_key:
        testnet = getattr(settings, "BINANCE_USE_TESTNET", True)
        blank.filter(exchange="binance").update(account=binance_account_id(api_key, testnet))


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0005_snapshot_account_index"),
    ]

    operations = [
        migrations.RunPython(snapshot_accounts_fill, migrations.RunPython.noop, elidable=False),
    ]
