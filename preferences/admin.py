from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from alsatrade.admin import DisplayAdmin
from preferences.forms import StrategyPreferenceForm
from preferences.models import StrategyPreference


@admin.register(StrategyPreference)
class StrategyPreferenceAdmin(SimpleHistoryAdmin, DisplayAdmin):
    """The "History" button lists every change: who, when, and each changed field's old → new value."""

    form = StrategyPreferenceForm
    list_display = [
        "name", "enabled", "product_list", "direction", "leverage", "margin_type", "sizing", "allocation_pct", "own_passphrase",
        "updated_at",
    ]
    list_filter = ["enabled", "direction", "margin_type", "sizing"]
    list_editable = ["enabled"]
    search_fields = ["name", "notes"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "products", "notes"]}),
        ("Trading", {"fields": ["direction", "sizing", "allocation_pct", "leverage", "margin_type", "price_tolerance_pct"]}),
        ("Entries", {"fields": ["entry", "entry_offset_pct", "entry_timeout", "on_timeout"]}),
        ("Protection and risk", {"fields": ["stop_loss", "take_profit", "take_profit_ladder", "breakeven_after",
                                            "breakeven_to", "trailing_stop",
                                            "max_daily_loss", "max_open_positions", "max_adds", "halted_until",
                                            "sync_to_alert"]}),
        ("Protections", {"fields": ["cooldown_after_loss", "max_trades_per_day", "loss_streak_limit", "max_drawdown_pct",
                                    "drawdown_locked_at", "trading_hours"]}),
        ("Webhook", {"fields": ["new_passphrase", "clear_passphrase", "max_signal_age"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="products")
    def product_list(self, obj: StrategyPreference) -> str:
        return ", ".join(obj.products) or "—"

    @admin.display(description="own passphrase", boolean=True)
    def own_passphrase(self, obj: StrategyPreference) -> bool:
        return bool(obj.passphrase_hash)
