"""REST API over the trading records (executions, signals, orders, positions, account), the kill
switch and the account registry (`/accounts`).

The contract is DESIGN.md §2: newest first, paginated by the REST_FRAMEWORK settings, amounts as
normalised strings (alsatrade.api_fields.AmountField).
"""

import re
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.db.models import Prefetch, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django_filters import rest_framework as filters  # type: ignore[import-untyped]
from django_filters.fields import IsoDateTimeField  # type: ignore[import-untyped]
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alsatrade.api_fields import (
    EMPTY_VALUE,
    NO_NUL,
    AmountField,
    AmountModelSerializer,
    StrictBooleanField,
    StrictCharField,
    empty_parameters,
)
from alsatrade.login_throttle import login_client_address
from alsatrade.openapi import DETAIL, FORBIDDEN, PAGE_NOT_FOUND, bad_request
from analytics.models import AccountSnapshot
from trading.accounts import AccountError, ExchangeUnreachable, account_create, account_halt, accounts_listed
from trading.exchange import get_exchange
from trading.halt import halt_set, positions_flatten
from trading.intake import redact
from trading.models import Account, Execution, Order, Position, Signal, TradingHalt

ALL_WORDS = {"true": True, "1": True, "false": False, "0": False}


# --- serializers -----------------------------------------------------------------------------------
class OrderSerializer(AmountModelSerializer):
    class Meta:
        model = Order
        fields = [
            "id", "execution", "source", "protective", "leg", "purpose", "client_order_id", "exchange_order_id", "symbol",
            "side", "order_type",
            "position_side", "quantity", "reduce_only", "status", "avg_price", "executed_qty", "commission",
            "commission_asset", "realized_pnl", "error_code", "error_message", "created_at", "sent_at",
            "acknowledged_at",
        ]
        read_only_fields = fields


class StageTimingsSerializer(serializers.Serializer):
    """Milliseconds spent in each stage, from Execution.stage_ms; null where a stage never happened."""

    queue = AmountField(allow_null=True)
    dispatch = AmountField(allow_null=True)
    prepare = AmountField(allow_null=True)
    exchange = AmountField(allow_null=True)
    total = AmountField(allow_null=True)


class ExecutionSerializer(AmountModelSerializer):
    orders = OrderSerializer(many=True, read_only=True)
    latency_ms = AmountField(read_only=True, allow_null=True, help_text="Webhook receipt to the exchange's acknowledgement.")
    stage_ms = StageTimingsSerializer(read_only=True)

    class Meta:
        model = Execution
        fields = [
            "id", "signal", "strategy", "symbol", "exchange", "status", "reason", "decision", "error_code",
            "error_message", "attempts", "signal_price", "fill_price", "slippage_bps", "received_at", "queued_at",
            "started_at", "sent_at", "acknowledged_at", "finished_at", "latency_ms", "stage_ms", "orders",
        ]
        read_only_fields = fields


class SignalSerializer(AmountModelSerializer):
    payload = serializers.SerializerMethodField(help_text="The alert as received, without its passphrase.")

    class Meta:
        model = Signal
        fields = [
            "id", "status", "reason", "http_status", "action", "symbol", "quantity", "price", "strategy",
            "sender_time", "market_position", "prev_market_position", "position_size", "comment", "source_ip",
            "idempotency_key", "duplicate_count", "last_duplicate_at", "received_at", "queued_at", "intake_us",
            "payload",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, signal: Signal) -> dict:
        # The passphrase is never stored; the webhook's own redaction again makes sure a future
        # change to storage cannot leak it here either.
        return redact(signal.payload) if isinstance(signal.payload, dict) else {}


class PositionSerializer(AmountModelSerializer):
    side = serializers.CharField(read_only=True, help_text="long, short or flat")

    class Meta:
        model = Position
        fields = [
            "id", "symbol", "position_side", "side", "amount", "entry_price", "leverage", "margin_type", "mark_price",
            "unrealized_pnl", "realized_pnl", "updated_at",
        ]
        read_only_fields = fields


class AccountSummarySerializer(serializers.Serializer):
    balance = AmountField(allow_null=True, help_text="Wallet balance.")
    equity = AmountField(allow_null=True, help_text="Wallet balance plus unrealized P&L.")
    available = AmountField(allow_null=True, help_text="Available for new margin.")
    unrealized_pnl = AmountField(allow_null=True)
    asset = serializers.CharField(allow_null=True)
    exchange = serializers.CharField(allow_null=True)
    snapshot_at = serializers.DateTimeField(allow_null=True)
    snapshot_age_seconds = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(help_text="Empty, or why there are no balances yet.")
    positions = PositionSerializer(many=True)


# --- filters ---------------------------------------------------------------------------------------
class GivenValuesForm(forms.Form):
    """A filter's form that refuses `?status=` (django-filter reads it as no filter; the schema's
    parameters are a value or absent)."""

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if isinstance(self.data, QueryDict):  # django-filter hands it the request's query
            for name in empty_parameters(self.data, list(self.fields)):
                self.add_error(name, EMPTY_VALUE)
        return cleaned


@extend_schema_field({"type": "string", "minLength": 1, "pattern": NO_NUL})
class TextFilter(filters.CharFilter):
    """Exact text; the schema says what the form already refuses (empty, NUL)."""


class WholeNumberField(forms.IntegerField):
    """ASCII digits only: Django's IntegerField also reads " 5", "5.0" and "٥"."""

    def to_python(self, value: object) -> int | None:
        if value in self.empty_values:
            return None
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise forms.ValidationError("Enter a whole number.", code="invalid")
        return super().to_python(value)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 2**63 - 1})
class IdFilter(filters.NumberFilter):
    """A record's id; an unknown one lists nothing (a ModelChoiceFilter would answer 400)."""

    field_class = WholeNumberField

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, min_value=1, max_value=2**63 - 1, **kwargs)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, converted to UTC here rather than by the database: PostgreSQL refuses an
    offset beyond ±15:59 and SQLite's adapter overflows near years 1 and 9999, both as a 500."""

    def to_python(self, value: object) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a date/time between the years 1 and 9999 in UTC.", code="invalid") from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class ReceivedRangeFilter(filters.FilterSet):
    strategy = TextFilter()
    symbol = TextFilter()
    received_after = UtcIsoDateTimeFilter(
        field_name="received_at", lookup_expr="gte", label="Received at or after this ISO 8601 time."
    )
    received_before = UtcIsoDateTimeFilter(
        field_name="received_at", lookup_expr="lt", label="Received before this ISO 8601 time."
    )


class ExecutionFilter(ReceivedRangeFilter):
    class Meta:
        model = Execution
        fields = ["status", "strategy", "symbol"]
        form = GivenValuesForm


class SignalFilter(ReceivedRangeFilter):
    class Meta:
        model = Signal
        fields = ["status", "strategy", "symbol"]
        form = GivenValuesForm


class OrderFilter(filters.FilterSet):
    symbol = TextFilter()
    execution = IdFilter(field_name="execution_id")

    class Meta:
        model = Order
        fields = ["status", "symbol", "execution", "source"]
        form = GivenValuesForm


BAD_FILTER = bad_request("A filter's value is empty or not what its parameter says; the body names it.")
LIST_ERRORS = {400: BAD_FILTER, 404: PAGE_NOT_FOUND}


# --- views -----------------------------------------------------------------------------------------
@extend_schema_view(get=extend_schema(responses={200: ExecutionSerializer(many=True), **LIST_ERRORS}))
class ExecutionList(generics.ListAPIView):
    """Execution history, newest first, each with its orders, decision and stage timings."""

    serializer_class = ExecutionSerializer
    filterset_class = ExecutionFilter
    queryset = Execution.objects.prefetch_related(Prefetch("orders", queryset=Order.objects.order_by("leg")))


@extend_schema_view(get=extend_schema(responses={200: SignalSerializer(many=True), **LIST_ERRORS}))
class SignalList(generics.ListAPIView):
    """Every webhook attempt, newest first, including the refused ones and why."""

    serializer_class = SignalSerializer
    filterset_class = SignalFilter
    queryset = Signal.objects.all()


@extend_schema_view(get=extend_schema(responses={200: OrderSerializer(many=True), **LIST_ERRORS}))
class OrderList(generics.ListAPIView):
    """Every order leg sent or about to be sent, newest first."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    queryset = Order.objects.all()


class PositionList(generics.ListAPIView):
    """Open positions; `?all=true` (or `1`) includes the flat ones."""

    serializer_class = PositionSerializer

    def get_queryset(self) -> QuerySet[Position]:
        shown = self.request.query_params.get("all", "false")
        if shown not in ALL_WORDS:
            raise ValidationError({"all": ["true, 1, false or 0."]})
        return Position.objects.all() if ALL_WORDS[shown] else Position.objects.exclude(amount=0)

    @extend_schema(
        parameters=[OpenApiParameter("all", str, enum=list(ALL_WORDS), description="true or 1: include flat positions.")],
        responses={200: PositionSerializer(many=True), 400: bad_request("`all` is not true, 1, false or 0."),
                   404: PAGE_NOT_FOUND},
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class AccountSummary(APIView):
    """Balances from the latest account snapshot, and the open positions."""

    @extend_schema(responses=AccountSummarySerializer)
    def get(self, request: Request) -> Response:
        # The account this deployment trades now (testnet and production keys are different accounts).
        snapshot = AccountSnapshot.objects.filter(account=get_exchange().account_id).first()
        positions = Position.objects.exclude(amount=0)
        return Response(AccountSummarySerializer(account_summary(snapshot, positions)).data)


def account_summary(snapshot: AccountSnapshot | None, positions: QuerySet[Position]) -> dict:
    if snapshot is None:
        # A new install: the worker has not taken its first snapshot yet. Not an error.
        return {
            "balance": None, "equity": None, "available": None, "unrealized_pnl": None, "asset": None,
            "exchange": None, "snapshot_at": None, "snapshot_age_seconds": None, "positions": positions,
            "message": "No account snapshot yet: the worker takes one periodically once it is running.",
        }
    return {
        "balance": snapshot.wallet_balance,
        "equity": snapshot.equity,
        "available": snapshot.available_balance,
        "unrealized_pnl": snapshot.unrealized_pnl,
        "asset": snapshot.asset,
        "exchange": snapshot.exchange,
        "snapshot_at": snapshot.taken_at,
        "snapshot_age_seconds": max(0, int((timezone.now() - snapshot.taken_at).total_seconds())),
        "positions": positions,
        "message": "",
    }


class HaltSerializer(serializers.Serializer):
    halted = StrictBooleanField()
    flatten = StrictBooleanField(default=False, write_only=True,
                                 help_text="Also close every open position now (through the normal execution path).")
    reason = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    changed_by = serializers.CharField(read_only=True)
    changed_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="null: never changed.")
    flattening = serializers.ListField(child=serializers.IntegerField(), read_only=True,
                                       help_text="The ids of the close signals queued by `flatten`.")


class CanHalt(BasePermission):
    message = "Changing the kill switch needs the trading.change_tradinghalt permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method in SAFE_METHODS or request.user.has_perm("trading.change_tradinghalt")


class Halt(APIView):
    """The kill switch. While halted, opening orders are refused with the reason and closing orders
    still go out; `flatten` closes every open position now. The state survives restarts."""

    permission_classes = [IsAuthenticated, CanHalt]
    # JSON only: from a form, DRF reads a missing `halted` as false (an unticked checkbox), so a POST
    # that forgot it would resume trading.
    parser_classes = [JSONParser]

    @extend_schema(responses=HaltSerializer)
    def get(self, request: Request) -> Response:
        return Response(HaltSerializer({**_halt_state(), "flattening": []}).data)

    @extend_schema(request=HaltSerializer, responses={
        200: HaltSerializer,
        400: bad_request("The body is not JSON, or `halted` is missing, or a field is not what the schema says."),
        403: FORBIDDEN,
    })
    def post(self, request: Request) -> Response:
        data = HaltSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        who = request.user.get_username()
        halt_set(halted=data.validated_data["halted"], reason=data.validated_data["reason"], by=who,
                 address=login_client_address(request._request))
        flattening = positions_flatten(by=who) if data.validated_data["flatten"] else []
        return Response(HaltSerializer({**_halt_state(), "flattening": flattening}).data)


def _halt_state() -> dict:
    halt = TradingHalt.current()
    return {"halted": halt.halted, "reason": halt.reason, "changed_by": halt.changed_by, "changed_at": halt.changed_at}


# --- accounts (the registry: trading/accounts.py) ---------------------------------------------------
SLUG = r"^[-a-zA-Z0-9_]+$"
KEY = r"^[!-~]+$"  # printable ASCII, no space: what Binance's keys and secrets are made of


class WholeMatchField(StrictCharField):
    """A StrictCharField whose pattern must match the whole text: Python's `$` also matches before a
    final line break, which the schema's (ECMAScript) `$` does not."""

    def __init__(self, regex: str, **kwargs: Any) -> None:  # noqa: ANN401 - DRF's field options
        super().__init__(regex, **kwargs)
        self.whole = re.compile(regex.removeprefix("^").removesuffix("$"))

    def to_internal_value(self, data: object) -> str:
        value = super().to_internal_value(data)
        if not self.whole.fullmatch(value):
            self.fail("invalid")
        return value


class AccountSerializer(serializers.Serializer):
    """An account as pages and scripts see it: never its keys, only their last four characters."""

    name = serializers.CharField(read_only=True)
    exchange = serializers.ChoiceField(Account.Exchange.values, source="venue", read_only=True)
    environment = serializers.ChoiceField(["paper", "testnet", "production"], read_only=True,
                                          help_text="Where its orders go (production: real money).")
    position_mode = serializers.ChoiceField(Account.PositionMode.values, read_only=True,
                                            help_text='As last read from the exchange; "": not read yet.')
    multi_assets = serializers.BooleanField(read_only=True, allow_null=True,
                                            help_text="Multi-assets margin mode as last read; null: not read, or paper.")
    key_hint = serializers.CharField(source="hint", read_only=True, help_text="The API key's last four characters.")
    halted = serializers.BooleanField(read_only=True)
    halted_reason = serializers.CharField(read_only=True)


class AccountCreateSerializer(serializers.Serializer):
    name = WholeMatchField(SLUG, max_length=50, help_text="Letters, digits, - and _; not `default`.")
    exchange = serializers.ChoiceField(Account.Exchange.values, help_text="binance (paper: only `default`, for now).")
    testnet = StrictBooleanField(help_text="Binance's test environment (true) or production, real money (false).")
    api_key = WholeMatchField(KEY, max_length=200, write_only=True)
    api_secret = WholeMatchField(KEY, max_length=200, write_only=True)


class AccountHaltSerializer(serializers.Serializer):
    halted = StrictBooleanField()
    reason = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    flatten = StrictBooleanField(default=False, help_text="Also close every open position now: the `default` "
                                 "account only (the others do not trade yet).")


class AccountHaltAnswerSerializer(AccountSerializer):
    flattening = serializers.ListField(child=serializers.IntegerField(), read_only=True,
                                       help_text="The ids of the close signals queued by `flatten`.")


class CanChangeAccounts(BasePermission):
    """Reading is for every user; adding needs trading.add_account, halting trading.change_account."""

    NEEDED = {"POST": "trading.add_account"}

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        needed = getattr(view, "needed_permission", self.NEEDED.get(request.method or "", ""))
        self.message = f"This needs the {needed} permission."
        return bool(needed) and request.user.has_perm(needed)


ACCOUNT_REFUSED = bad_request("The body is not JSON or not what the schema says, or the account was refused "
                              "(`detail`, in words): the exchange refused the key, the name is taken or `default`, "
                              "or the exchange is paper (only `default`, for now).")
UNREACHABLE = OpenApiResponse(DETAIL, description="The exchange could not be asked (network, rate limit): nothing "
                              "was stored; try again.")
ACCOUNT_NOT_FOUND = OpenApiResponse(DETAIL, description="No account by that name.")


class AccountList(APIView):
    """The accounts, `default` (the environment's, which the strategies trade today) first: a plain list,
    not paged (a handful of rows). POST adds one once the exchange has accepted its key; its keys are
    stored encrypted and never shown again."""

    permission_classes = [IsAuthenticated, CanChangeAccounts]
    parser_classes = [JSONParser]

    @extend_schema(responses=AccountSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(AccountSerializer(accounts_listed(), many=True).data)

    @extend_schema(request=AccountCreateSerializer, responses={
        201: AccountSerializer, 400: ACCOUNT_REFUSED, 403: FORBIDDEN, 503: UNREACHABLE,
    })
    def post(self, request: Request) -> Response:
        data = AccountCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            account = account_create(**data.validated_data, by=request.user.get_username())
        except ExchangeUnreachable as error:
            return Response({"detail": str(error)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        except AccountError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(AccountSerializer(account).data, status=status.HTTP_201_CREATED)


class AccountHalt(APIView):
    """An account's own kill switch. The `default` account's binds the strategies as `/halt` does
    (opening orders refused, closing ones go out; `flatten` closes every open position); another
    account's is kept and shown (they do not trade yet)."""

    permission_classes = [IsAuthenticated, CanChangeAccounts]
    needed_permission = "trading.change_account"
    parser_classes = [JSONParser]

    @extend_schema(request=AccountHaltSerializer, responses={
        200: AccountHaltAnswerSerializer,
        400: bad_request("The body is not JSON, or `halted` is missing, or a field is not what the schema says, "
                         "or `flatten` for an account that does not trade yet."),
        403: FORBIDDEN, 404: ACCOUNT_NOT_FOUND,
    })
    def post(self, request: Request, name: str) -> Response:
        account = Account.objects.filter(name=name).first()
        if account is None:
            raise NotFound(f"No account named {name!r}.")
        data = AccountHaltSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            done = account_halt(account, **data.validated_data, by=request.user.get_username(),
                                address=login_client_address(request._request))
        except AccountError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({**AccountSerializer(done.account).data, "flattening": done.flattening})
