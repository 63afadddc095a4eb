from django.contrib import admin

from alsatrade.admin import ReadOnlyAdmin
from analytics.models import AccountSnapshot, Kline


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["taken_at", "exchange", "asset", "wallet_balance", "available_balance", "equity", "unrealized_pnl"]
    list_filter = ["exchange", "asset"]
    date_hierarchy = "taken_at"


@admin.register(Kline)
class KlineAdmin(ReadOnlyAdmin):
    """Imported by `manage.py import_klines`: looked at, never edited. Hundreds of thousands of rows:
    searched by exact symbol (the unique index), never counted in full."""

    list_display = ["symbol", "open_time", "open", "high", "low", "close", "volume"]
    search_fields = ["=symbol"]
    show_full_result_count = False
