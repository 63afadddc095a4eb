import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.debug import sensitive_post_parameters
from simple_history.admin import SimpleHistoryAdmin

from alsatrade.admin import InternalAdmin, ReadOnlyAdmin, ReadOnlyDisplay, plain_amount
from alsatrade.login_throttle import login_client_address
from analytics.timeline import decision_plan, sizing_rows
from trading.accounts import AccountError, account_halt, account_keys_replace, account_keys_verified, account_verified
from trading.admin_filters import ConfiguredStrategyFilter
from trading.exchange import get_exchange
from trading.halt import halt_set, positions_flatten
from trading.halt_forms import HaltForm
from trading.models import (
    Account,
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
    TradingHalt,
    WorkerHeartbeat,
)

ORDER_INLINE_FIELDS = [
    "leg", "purpose", "side", "quantity", "reduce_only", "status", "executed_qty", "avg_price", "realized_pnl", "client_order_id",
    "exchange_order_id",
]
EXECUTION_STAGES = ["received_at", "queued_at", "started_at", "sent_at", "acknowledged_at", "finished_at"]


class OrderInline(ReadOnlyDisplay, admin.TabularInline):
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
    ms_fields = ["received_at", "queued_at"]


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "strategy", "symbol", "status", "reason", "fill_price", "slippage_bps", "latency"]
    list_filter = ["status", "exchange", "strategy", "symbol"]
    search_fields = ["id", "signal__id", "strategy", "symbol", "reason", "error_code"]
    date_hierarchy = "received_at"
    fieldsets = [
        (None, {"fields": ["signal", "strategy", "symbol", "exchange", "status", "reason", "attempts", "error_code",
                           "error_message"]}),
        ("Decision", {"fields": ["decision_table"]}),
        ("Prices", {"fields": ["signal_price", "fill_price", "slippage_bps"]}),
        ("Timing", {"fields": [*EXECUTION_STAGES, "stages"]}),
    ]
    readonly_fields = ["decision_table", "stages"]
    ms_fields = EXECUTION_STAGES
    inlines = [OrderInline]

    @admin.display(description="latency (ms)")
    def latency(self, obj: Execution) -> Decimal | None:
        return obj.latency_ms

    @admin.display(description="stage timings (ms)")
    def stages(self, obj: Execution) -> SafeString:
        shown = ((stage, "—" if ms is None else ms) for stage, ms in obj.stage_ms.items())
        return format_html_join(", ", "{}: {}", shown)

    @admin.display(description="decision")
    def decision_table(self, obj: Execution) -> SafeString:
        plan = decision_plan(obj.decision)
        if plan is None:
            # Nothing planned, or a record older than the Plan format: shown as stored.
            stored = json.dumps(obj.decision, indent=2, ensure_ascii=False) if obj.decision else "none recorded"
            return format_html("<pre>{}</pre>", stored)
        legs = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td class='num'>{}</td><td>{}</td><td>{}</td></tr>",
            ((number, leg.purpose, leg.side, plain_amount(leg.quantity), "yes" if leg.reduce_only else "no", leg.position_side)
             for number, leg in enumerate(plan.legs, start=1)),
        ) or format_html("<tr><td colspan='6'>{}</td></tr>", "no order legs: nothing was to be sent")
        sizing = format_html_join(
            "", "<tr><th scope='row'>{}</th><td class='num'>{}</td></tr>",
            ((label, readable(value)) for label, value in sizing_rows(plan.sizing)),
        ) or format_html("<tr><td colspan='2'>{}</td></tr>", "nothing was sized")
        price = f" at {plain_amount(plan.price)}" if plan.price is not None else ""
        return format_html(
            "<p class='decision-reason'><strong>{}</strong>: {}{}</p>"
            "<table class='decision-legs'><caption>Legs</caption><thead><tr><th>#</th><th>purpose</th><th>side</th>"
            "<th class='num'>quantity</th><th>reduce only</th><th>position side</th></tr></thead><tbody>{}</tbody></table>"
            "<table class='decision-sizing'><caption>Sizing inputs</caption><tbody>{}</tbody></table>",
            plan.outcome, plan.reason, price, legs, sizing,
        )


def readable(value: object) -> str:
    """A sizing input as people read it: numbers normalised, words as they are."""
    if isinstance(value, bool):
        return str(value)
    try:
        return plain_amount(Decimal(str(value)))
    except InvalidOperation:
        return str(value)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "created_at", "source", "symbol", "side", "quantity", "reduce_only", "status", "executed_qty", "avg_price",
        "commission", "realized_pnl", "client_order_id",
    ]
    list_filter = ["source", "status", "side", "symbol", "reduce_only"]
    search_fields = ["client_order_id", "exchange_order_id", "symbol"]
    date_hierarchy = "created_at"
    ms_fields = ["created_at", "sent_at", "acknowledged_at"]


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = [
        "symbol", "position_side", "amount", "entry_price", "mark_price", "unrealized_pnl", "realized_pnl",
        "applied_leverage", "applied_margin_type", "updated_at",
    ]
    list_filter = ["position_side"]
    search_fields = ["symbol"]
    # The mirror's own leverage and margin type are never filled (v3 position rows carry neither):
    # what was applied comes from SymbolSetting instead.
    exclude = ["leverage", "margin_type"]
    readonly_fields = ["applied_leverage", "applied_margin_type"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Position]:
        # What was last set on the account this deployment trades now (testnet and production
        # differ), as recorded when the worker set it: the exchange's v3 position rows carry neither.
        applied = SymbolSetting.objects.filter(account=get_exchange().account_id, symbol=OuterRef("symbol"))
        return super().get_queryset(request).annotate(
            setting_leverage=Subquery(applied.values("leverage")[:1]),
            setting_margin_type=Subquery(applied.values("margin_type")[:1]),
        )

    @admin.display(description="leverage applied")
    def applied_leverage(self, obj: Position) -> str:
        leverage = getattr(obj, "setting_leverage", None)
        return f"{leverage}x" if leverage else "not set yet"

    @admin.display(description="margin type applied")
    def applied_margin_type(self, obj: Position) -> str:
        return getattr(obj, "setting_margin_type", None) or "not set yet"


@admin.register(SymbolSetting)
class SymbolSettingAdmin(ReadOnlyAdmin):
    list_display = ["account", "symbol", "leverage", "margin_type", "updated_at"]


@admin.register(PaperAccount)
class PaperAccountAdmin(InternalAdmin, ReadOnlyAdmin):
    list_display = ["asset", "wallet_balance", "updated_at"]


@admin.register(PaperPosition)
class PaperPositionAdmin(InternalAdmin, ReadOnlyAdmin):
    list_display = ["symbol", "position_side", "amount", "entry_price", "leverage", "margin_type", "updated_at"]
    search_fields = ["symbol"]


@admin.register(PaperOrder)
class PaperOrderAdmin(InternalAdmin, ReadOnlyAdmin):
    list_display = [
        "client_order_id", "created_at", "symbol", "side", "quantity", "avg_price", "commission", "realized_pnl", "status",
    ]
    search_fields = ["client_order_id", "symbol"]


@admin.register(PaperPrice)
class PaperPriceAdmin(InternalAdmin, ReadOnlyAdmin):
    list_display = ["symbol", "price", "updated_at"]


@admin.register(SymbolLane)
class SymbolLaneAdmin(InternalAdmin, ReadOnlyAdmin):
    list_display = ["symbol", "holder", "lease_until"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(InternalAdmin, ReadOnlyAdmin):
    list_display = ["name", "host", "beat_at"]


@admin.register(TradingHalt)
class TradingHaltAdmin(SimpleHistoryAdmin):
    """The kill switch, one row: halt or resume (and flatten) here as on the dashboard and POST /halt.
    Its "History" button lists every change: who, when, from which address, and why."""

    form = HaltForm
    fields = ["halted", "reason", "flatten", "changed_by", "changed_at", "changed_from"]
    readonly_fields = ["changed_by", "changed_at", "changed_from"]
    history_list_display = ["halted", "reason", "changed_by", "changed_from"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """There is one kill switch: go straight to it."""
        TradingHalt.create_if_missing()
        return redirect(reverse("admin:trading_tradinghalt_change", args=[1]))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def revert_disabled(self, request: HttpRequest, obj: TradingHalt | None = None) -> bool:
        """History is to read: halting or resuming is done with the form, which says what it changes."""
        return True

    def save_model(self, request: HttpRequest, obj: TradingHalt, form: HaltForm, change: bool) -> None:
        who = request.user.get_username()
        halt_set(halted=form.cleaned_data["halted"], reason=form.cleaned_data["reason"], by=who,
                 address=login_client_address(request))
        if form.cleaned_data["flatten"]:
            closing = positions_flatten(by=who)
            self.message_user(request, f"Closing {len(closing)} open position(s) now.", messages.WARNING)


class AccountForm(forms.ModelForm):
    """The keys are typed here and never shown again: write-only password inputs, blank on a change to
    keep the stored ones. A key is stored only once the exchange has accepted it (trading/accounts.py)."""

    new_api_key = forms.CharField(label="API key", required=False, strip=True, max_length=200,
                                  widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))
    new_api_secret = forms.CharField(label="API secret", required=False, strip=True, max_length=200,
                                     widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))

    class Meta:
        model = Account
        fields = ["name", "exchange", "testnet", "halted", "halted_reason"]

    def __init__(self, *args: Any, user: str = "", **kwargs: Any) -> None:  # noqa: ANN401 - ModelForm's arguments
        super().__init__(*args, **kwargs)
        self.user = user
        self.verified: Account | None = None
        if self.instance.pk is not None:
            self.fields["new_api_key"].help_text = "Blank: keep the stored key."
            self.fields["new_api_secret"].help_text = "Blank: keep the stored secret."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        key, secret = data.get("new_api_key", ""), data.get("new_api_secret", "")
        if bool(key) != bool(secret):
            raise forms.ValidationError("Give the API key and its secret together.")
        try:
            if self.instance.pk is None:
                if not key:
                    raise forms.ValidationError("An account needs its API key and secret.")
                self.verified = account_verified(name=data["name"], exchange=data["exchange"], testnet=data["testnet"],
                                                 api_key=key, api_secret=secret, by=self.user)
            elif key:
                self.verified = account_keys_verified(self.instance, api_key=key, api_secret=secret)
        except AccountError as error:
            raise forms.ValidationError(str(error)) from None
        return data


@admin.register(Account)
class AccountAdmin(SimpleHistoryAdmin):
    """The account registry. The encrypted keys are never rendered (not even as tokens): only the hint.
    Halting here is the same as on the accounts page and `POST /accounts/{name}/halt`."""

    form = AccountForm
    list_display = ["name", "shown_exchange", "environment", "position_mode", "multi_assets", "shown_hint", "halted"]
    # The exchange as the account trades on it (`default`'s from the environment, not its row's columns).
    readonly_fields = ["shown_exchange", "environment", "shown_hint", "position_mode", "multi_assets", "modes_read_at",
                       "changed_by", "created_at", "updated_at"]
    history_list_display = ["halted", "halted_reason", "key_hint", "changed_by"]

    @method_decorator(sensitive_post_parameters("new_api_key", "new_api_secret"))
    def changeform_view(self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
                        extra_context: dict | None = None) -> HttpResponse:
        """An error report (DEBUG's page, a logged traceback) shows the typed keys as stars."""
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="exchange")
    def shown_exchange(self, obj: Account) -> str:
        return obj.venue

    @admin.display(description="key")
    def shown_hint(self, obj: Account) -> str:
        return f"…{obj.hint}" if obj.hint else "-"

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        if obj is None:
            return ["name", "exchange", "testnet", "new_api_key", "new_api_secret"]
        editable = ["halted", "halted_reason"] if cast_account(obj).is_default else \
            ["new_api_key", "new_api_secret", "halted", "halted_reason"]
        return ["name", *editable, *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # Name, exchange and flag are what the stored key was verified against: fixed once added.
        return list(self.readonly_fields) + (["name"] if obj is not None else [])

    def get_form(self, request: HttpRequest, obj: Model | None = None, change: bool = False,
                 **kwargs: Any) -> type[forms.ModelForm]:  # noqa: ANN401 - ModelAdmin's options
        form = super().get_form(request, obj, change=change, **kwargs)
        user = request.user.get_username()

        class UserAccountForm(form):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **inner: Any) -> None:  # noqa: ANN401 - ModelForm's arguments
                super().__init__(*args, user=user, **inner)

        return UserAccountForm

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """`default` is the environment's account: it stays."""
        return super().has_delete_permission(request, obj) and not (obj is not None and cast_account(obj).is_default)

    def revert_disabled(self, request: HttpRequest, obj: Account | None = None) -> bool:
        """History is to read: a revert would not verify anything with the exchange."""
        return True

    def save_model(self, request: HttpRequest, obj: Account, form: AccountForm, change: bool) -> None:
        who = request.user.get_username()
        if not change:
            assert form.verified is not None  # clean() verified the key
            for field in ("api_key", "api_secret", "key_hint", "position_mode", "multi_assets", "modes_read_at",
                          "changed_by"):
                setattr(obj, field, getattr(form.verified, field))
            obj.halted, obj.halted_reason = False, ""
            obj.save()
            return
        stored = Account.objects.get(pk=obj.pk)
        if form.verified is not None:
            account_keys_replace(stored, form.verified, by=who)
        if "halted" in form.changed_data or "halted_reason" in form.changed_data:
            account_halt(stored, halted=form.cleaned_data["halted"], reason=form.cleaned_data["halted_reason"], by=who,
                         address=login_client_address(request))


def cast_account(obj: Model) -> Account:
    assert isinstance(obj, Account)
    return obj
