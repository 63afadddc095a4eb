from decimal import Decimal

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from alsatrade.admin import ReadOnlyAdmin
from trading.admin_filters import ConfiguredStrategyFilter
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

ORDER_INLINE_FIELDS = [
    "leg", "purpose", "side", "quantity", "reduce_only", "status", "executed_qty", "avg_price", "realized_pnl", "client_order_id",
    "exchange_order_id",
]


class OrderInline(admin.TabularInline):
    model = Order
    extra = 0
    can_delete = False
    fields = list(ORDER_INLINE_FIELDS)
    readonly_fields = ORDER_INLINE_FIELDS
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "received_at", "strategy", "action", "symbol", "quantity", "price", "status", "reason", "duplicate_count",
        "source_ip", "intake_us",
    ]
    list_filter = ["status", "http_status", ConfiguredStrategyFilter]
    search_fields = ["id", "strategy", "symbol", "idempotency_key", "reason", "source_ip"]
    date_hierarchy = "received_at"
    list_select_related = ["preference"]


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "strategy", "symbol", "status", "reason", "fill_price", "slippage_bps", "latency"]
    list_filter = ["status", "exchange", "strategy", "symbol"]
    search_fields = ["id", "signal__id", "strategy", "symbol", "reason", "error_code"]
    date_hierarchy = "received_at"
    readonly_fields = ["stages"]
    inlines = [OrderInline]

    @admin.display(description="latency (ms)")
    def latency(self, obj: Execution) -> Decimal | None:
        return obj.latency_ms

    @admin.display(description="stage timings (ms)")
    def stages(self, obj: Execution) -> SafeString:
        return format_html_join(", ", "{}: {}", obj.stage_ms.items())


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "created_at", "symbol", "side", "quantity", "reduce_only", "status", "executed_qty", "avg_price", "commission",
        "realized_pnl", "client_order_id",
    ]
    list_filter = ["status", "side", "symbol", "reduce_only"]
    search_fields = ["client_order_id", "exchange_order_id", "symbol"]
    date_hierarchy = "created_at"


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = [
        "symbol", "position_side", "amount", "entry_price", "mark_price", "unrealized_pnl", "realized_pnl", "leverage",
        "margin_type", "updated_at",
    ]
    list_filter = ["position_side", "margin_type"]
    search_fields = ["symbol"]


@admin.register(PaperAccount)
class PaperAccountAdmin(ReadOnlyAdmin):
    list_display = ["asset", "wallet_balance", "updated_at"]


@admin.register(PaperPosition)
class PaperPositionAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "position_side", "amount", "entry_price", "leverage", "margin_type", "updated_at"]
    search_fields = ["symbol"]


@admin.register(PaperOrder)
class PaperOrderAdmin(ReadOnlyAdmin):
    list_display = [
        "client_order_id", "created_at", "symbol", "side", "quantity", "avg_price", "commission", "realized_pnl", "status",
    ]
    search_fields = ["client_order_id", "symbol"]


@admin.register(PaperPrice)
class PaperPriceAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "price", "updated_at"]


@admin.register(SymbolLane)
class SymbolLaneAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "holder", "lease_until"]


@admin.register(SymbolSetting)
class SymbolSettingAdmin(ReadOnlyAdmin):
    list_display = ["account", "symbol", "leverage", "margin_type", "updated_at"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "host", "beat_at"]
