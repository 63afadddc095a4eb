"""REST API over strategy preferences: read them all, or set one setting of one strategy.

Every change goes through StrategyPreferenceForm, the admin's own form, so the admin and the API
can never disagree on what a valid preference is. Before it, the value must be what the type's
schema says (preferences/api_values.py): 400 if not; a well-formed value the form still refuses
(a symbol the exchange does not list) is a 409.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alsatrade.api_fields import NOT_BLANK, AmountModelSerializer, DecimalJSONParser, StrictCharField
from alsatrade.openapi import FORBIDDEN, bad_request, conflict
from preferences.api_values import value_read
from preferences.forms import StrategyPreferenceForm
from preferences.models import StrategyPreference

# The API's word for each setting → the form (and model) field it sets.
PREFERENCE_TYPES = {
    "product": "products",
    "strategy": "enabled",
    "direction": "direction",
    "leverage": "leverage",
    "allocation": "allocation_pct",
    "margin": "margin_type",
    "sizing": "sizing",
    "risk_pct": "risk_pct",
    "max_position_usdt": "max_position_usdt",
    "max_daily_loss": "max_daily_loss",
    "max_open_positions": "max_open_positions",
    "max_adds": "max_adds",
    "entry": "entry",
    "entry_offset_pct": "entry_offset_pct",
    "entry_timeout": "entry_timeout",
    "on_timeout": "on_timeout",
    "sync_to_alert": "sync_to_alert",
    "stop_loss": "stop_loss",
    "take_profit": "take_profit",
    "trailing_stop": "trailing_stop",
    "breakeven_after": "breakeven_after",
    "breakeven_to": "breakeven_to",
    "cooldown_after_loss": "cooldown_after_loss",
    "max_trades_per_day": "max_trades_per_day",
    "loss_streak_limit": "loss_streak_limit",
    "max_drawdown_pct": "max_drawdown_pct",
    "trading_hours": "trading_hours",
    "drawdown_lock": "drawdown_locked_at",
}
BOOLEAN_WORDS = {"true": True, "false": False}


class PreferenceSerializer(AmountModelSerializer):
    has_own_passphrase = serializers.SerializerMethodField(help_text="The strategy has its own webhook passphrase.")

    class Meta:
        model = StrategyPreference
        fields = [
            "name", "enabled", "products", "direction", "leverage", "margin_type", "sizing", "allocation_pct", "risk_pct",
            "max_position_usdt", "price_tolerance_pct",
            "entry", "entry_offset_pct", "entry_timeout", "on_timeout",
            "stop_loss", "take_profit", "take_profit_ladder", "breakeven_after",
            "breakeven_to", "trailing_stop", "max_daily_loss", "max_open_positions", "max_adds", "sync_to_alert", "halted_until",
            "cooldown_after_loss", "max_trades_per_day", "loss_streak_limit", "max_drawdown_pct", "drawdown_locked_at",
            "trading_hours", "max_signal_age", "has_own_passphrase", "updated_at",
        ]
        read_only_fields = fields

    def get_has_own_passphrase(self, preference: StrategyPreference) -> bool:
        return bool(preference.passphrase_hash)


class PreferenceChangeSerializer(serializers.Serializer):
    strategy = StrictCharField(regex=NOT_BLANK, max_length=100, help_text="The alert's `strategy` value; created if "
                               "new. Spaces around it are dropped.")
    value = serializers.JSONField(
        allow_null=True,
        encoder=DjangoJSONEncoder,  # the body's fractions are Decimals (DecimalJSONParser)
        help_text="product: list or comma-separated symbols, checked against the exchange (BTC → BTCUSDT) · "
        "strategy: true/false · direction: long/short/both · leverage: 1–125 · allocation: 0 < x ≤ 100 (% of equity) · "
        "margin: cross/isolated · sizing: auto/allocation/signal/risk · risk_pct: 0 < x ≤ 100 or null · "
        "max_position_usdt: USDT or null · stop_loss, take_profit: % from entry, 0 or null off · "
        'take_profit: also a ladder, [{"pct": 2, "share": 50}, …] (up to 5, shares sum to 100) · '
        "breakeven_after: a ladder level 1–5 or null · breakeven_to: entry/previous_tp · "
        'trailing_stop: {"callback": 0.1–10, "activation_pct": % from entry} or null · '
        "max_daily_loss: USDT or null · max_open_positions: ≥ 1 or null · max_adds: ≥ 0 or null · sync_to_alert: true/false · "
        "entry: market/limit/post_only · entry_offset_pct: 0–50 (% from the alert's price) · entry_timeout: 1–3600 s · "
        "on_timeout: cancel/market · "
        "cooldown_after_loss: minutes or null · max_trades_per_day: ≥ 1 or null · loss_streak_limit: ≥ 1 or null · "
        "max_drawdown_pct: 0 < x ≤ 100 or null · trading_hours: e.g. \"mon-fri 07:00-21:00\" (UTC) or \"\" · "
        "drawdown_lock: null/false lifts the lock, true locks now"
    )


    def validate_strategy(self, name: str) -> str:
        return name.strip()  # as the form does: the schema's maxLength counts the name as sent


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The strategy was created by another request at the same moment; send the change again."


class Refused(APIException):
    """A value of the right form that the strategy's form refuses as things are (a symbol the exchange does
    not list, a window that ends where it starts): a bad value like any other, its errors as the body."""

    status_code = status.HTTP_400_BAD_REQUEST


class CanChangePreferences(BasePermission):
    message = "Changing preferences needs the preferences.change_strategypreference permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method in SAFE_METHODS or request.user.has_perm("preferences.change_strategypreference")


class PreferenceList(generics.ListAPIView):
    """Every strategy's preferences, enabled or not."""

    serializer_class = PreferenceSerializer
    queryset = StrategyPreference.objects.all()
    pagination_class = None
    filter_backends: list = []


class PreferenceChange(APIView):
    """Set one setting of one strategy, creating the strategy if new (201)."""

    permission_classes = [IsAuthenticated, CanChangePreferences]
    # JSON only: the schema's `value` is JSON (a list, a number, true), which a form body cannot carry.
    # Its fractions are read as Decimals, exactly as written.
    parser_classes = [DecimalJSONParser]

    # One operation per type in the schema (alsatrade.openapi.preference_operations), each with its value.
    @extend_schema(
        operation_id="preferences_set",
        request=PreferenceChangeSerializer,
        responses={
            200: PreferenceSerializer,
            201: PreferenceSerializer,
            400: bad_request("A bad type, strategy name or value; the body names it. Besides what the type's schema "
                             "says, a product the exchange does not list and a window that ends where it starts."),
            403: FORBIDDEN,
            409: conflict("The strategy was created by another request at the same moment: send the change again."),
        },
    )
    def post(self, request: Request, type: str) -> Response:  # noqa: A002 - the contract's own word
        field = field_for_type(type)
        data = PreferenceChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["strategy"]
        value = value_read(type, field, data.validated_data["value"])
        try:
            may_create = request.user.has_perm("preferences.add_strategypreference")
            preference, created = preference_set(name=name, kind=type, field=field, value=value, may_create=may_create)
        except IntegrityError:
            raise Conflict() from None
        answer = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(PreferenceSerializer(preference).data, status=answer)


def field_for_type(kind: str) -> str:
    if kind not in PREFERENCE_TYPES:
        raise ValidationError({"type": [f"{kind!r} is not a preference type; valid types: {', '.join(PREFERENCE_TYPES)}."]})
    return PREFERENCE_TYPES[kind]


def preference_set(
    *, name: str, kind: str, field: str, value: object, may_create: bool
) -> tuple[StrategyPreference, bool]:
    # The form saves every field, so two changes to one strategy at once must not both read the
    # old row: the row lock makes the second wait for the first and then see its change.
    with transaction.atomic():
        preference = StrategyPreference.objects.select_for_update().filter(name=name).first()
        created = preference is None
        if created and not may_create:
            raise PermissionDenied("Creating a strategy needs the preferences.add_strategypreference permission.")
        form = bound_form(preference or StrategyPreference(name=name), kind=kind, field=field, value=value)
        if not form.is_valid():
            raise Refused(errors_by_type(form, kind=kind, field=field))
        return form.save(), created


def bound_form(preference: StrategyPreference, *, kind: str, field: str, value: object) -> StrategyPreferenceForm:
    """The admin's form, bound to the strategy's current values with the one field changed."""
    current = model_to_dict(preference, fields=StrategyPreferenceForm.Meta.fields)
    # A page posts the value it showed beside a lock field ("initial-…"): here what was shown is the row itself.
    data = {**current, **{f"initial-{name}": shown for name, shown in current.items()}}
    data[field] = form_value(kind, value)
    if kind == "take_profit":  # a number is one take-profit, a list a ladder: setting one clears the other
        data["take_profit"], data["take_profit_ladder"] = (None, value) if isinstance(value, list) else (value, None)
    return StrategyPreferenceForm(data=data, instance=preference)


def form_value(kind: str, value: object) -> object:
    """JSON the form's HTML-minded fields would misread is refused here: a checkbox reads any
    non-empty word as "on", and the products splitter cannot read a number."""
    if kind in ("strategy", "sync_to_alert"):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[value.strip().lower()]
        raise ValidationError({kind: [f"{json.dumps(value)} is not true or false."]})
    if kind == "drawdown_lock":
        # null or false lifts the lock (and measures the drawdown afresh from now); true locks it now.
        lock = BOOLEAN_WORDS.get(value.strip().lower(), value) if isinstance(value, str) else value
        if lock is None or lock is False:
            return None
        if lock is True:
            return timezone.now()
        raise ValidationError({kind: [f"{json.dumps(value)} is not null, false (lift the lock) or true (lock now)."]})
    if kind == "product" and not isinstance(value, (str, list)):
        raise ValidationError({"product": ['Give a list of symbols or a comma-separated string, e.g. ["BTCUSDT", "ETHUSDT"].']})
    return value


def errors_by_type(form: StrategyPreferenceForm, *, kind: str, field: str) -> dict[str, list[str]]:
    """The form's errors under the API's words: the changed field under its type, the name under
    `strategy` (the body's key for it)."""
    rename = {field: kind, "name": "strategy", "__all__": "non_field_errors"}
    if kind == "take_profit":
        rename["take_profit_ladder"] = kind
    return {rename.get(name, name): [str(message) for message in messages] for name, messages in form.errors.items()}
