from django.contrib import admin

from alsatrade.admin import ReadOnlyAdmin
from analytics.models import AccountSnapshot


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["taken_at", "exchange", "asset", "wallet_balance", "available_balance", "equity", "unrealized_pnl"]
    list_filter = ["exchange", "asset"]
    date_hierarchy = "taken_at"
