"""REST API over the analytics: the /ui/analytics/ page's figures, and the account's snapshots.

`GET /analytics/summary` reads the page's own cached figures (analytics.performance) over the window
the page's own filter form (analytics.performance_forms) makes, so the page and the API cannot
disagree on a figure; this module writes them as JSON, amounts as normalised strings
(alsatrade.api_fields.AmountField). Its parameters are checked as the schema says, where the page is
lenient: any strategy or symbol (one without trades has zero figures), a "From" after the "To" is an
empty period, and a bad or empty value is a 400 where the page falls back to its default.
"""

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alsatrade.api_fields import (
    NO_NUL,
    NOT_BLANK,
    AmountField,
    AmountModelSerializer,
    DecimalJSONParser,
    StrictCharField,
    refuse_empty_values,
)
from alsatrade.openapi import DETAIL, FORBIDDEN, PAGE_NOT_FOUND, bad_request
from analytics.models import AccountSnapshot, ReplayRun
from analytics.performance import CACHE_SECONDS, LATENCY_SAMPLE, Scope, cached_equity, cached_performance
from analytics.performance_forms import PERIOD_CHOICES, PerformanceFilterForm, Window
from analytics.replay_runs import (
    DEFAULT_SLIPPAGE_BPS,
    DIFFERENCES_MAX,
    MAX_SLIPPAGE_BPS,
    REPLAY_TYPES,
    ZERO,
    replay_request,
)
from preferences.api import PREFERENCE_TYPES
from preferences.api_values import value_read, value_schema
from preferences.models import StrategyPreference
from trading.exchange import get_exchange

# Ratios and averages are exact quotients (28 digits): written to the ledger's own 8 decimals.
LEDGER_PLACES = 8
RECENT_REPLAYS = 50


class Money(AmountField):
    """An amount (or a ratio of amounts) to 8 decimals, null where the figure does not exist."""

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401 - DRF's field options
        super().__init__(decimal_places=LEDGER_PLACES, allow_null=True, **kwargs)


# --- serializers: the dataclasses of analytics.metrics and analytics.performance, as JSON --------------
class PnLSerializer(serializers.Serializer):
    net = Money(help_text="realized + commission + funding")
    realized = Money()
    commission = Money(help_text="Signed as the exchange books it: a fee paid is negative.")
    funding = Money(help_text="Signed: funding paid is negative, received positive.")
    fees = Money(help_text="commission + funding")


class TradeStatsSerializer(serializers.Serializer):
    trades = serializers.IntegerField(help_text="Closed trades (round trips from flat to flat) in the period.")
    open_trades = serializers.IntegerField(help_text="Trades not yet back to flat: counted, left out of the statistics.")
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    break_even = serializers.IntegerField(help_text="Closed trades whose net is within ±0.01.")
    net = Money(help_text="Σ net of the closed trades (realized + commissions; funding is not per trade).")
    gross_win = Money()
    gross_loss = Money()
    win_rate = Money(help_text="Percent: wins ÷ (wins + losses) × 100; null without wins or losses.")
    average_win = Money()
    average_loss = Money()
    profit_factor = Money(help_text="Σ wins ÷ |Σ losses|; null without a losing trade.")
    expectancy = Money(help_text="Σ net ÷ closed trades; null without trades.")


class DrawdownSerializer(serializers.Serializer):
    amount = Money(help_text="Peak − trough, ≥ 0.")
    pct = Money(help_text="amount ÷ peak × 100; null when the peak is not positive.")
    peak = Money()
    peak_at = serializers.DateTimeField(allow_null=True)
    trough = Money()
    trough_at = serializers.DateTimeField(allow_null=True)


class GroupSerializer(serializers.Serializer):
    name = serializers.CharField()
    pnl = PnLSerializer(allow_null=True, help_text="From the ledger; null for long vs short, which the ledger cannot tell.")
    stats = TradeStatsSerializer()


class PeriodPnLSerializer(serializers.Serializer):
    period = serializers.CharField(source="label", help_text="2024-01-05, 2024-W01 or 2024-01")
    start = serializers.DateField()
    pnl = PnLSerializer()


class LatencySerializer(serializers.Serializer):
    stage = serializers.CharField(source="stage.name")
    between = serializers.CharField(source="stage.label", help_text="e.g. received → queued")
    count = serializers.IntegerField(help_text="Executions that went through the stage.")
    p50 = AmountField(allow_null=True, help_text="Milliseconds, nearest rank.")
    p95 = AmountField(allow_null=True)
    p99 = AmountField(allow_null=True)


class WindowSerializer(serializers.Serializer):
    name = serializers.CharField(source="label", help_text="e.g. Last 30 days, 2024-01-01 to 2024-01-31")
    start = serializers.DateTimeField(allow_null=True, help_text="Inclusive; null: from the beginning.")
    end = serializers.DateTimeField(allow_null=True, help_text="Exclusive; null: up to now.")


class AnalyticsSummarySerializer(serializers.Serializer):
    period = WindowSerializer()
    account = serializers.CharField()
    exchange = serializers.CharField()
    strategy = serializers.CharField(help_text="Empty: every strategy.")
    symbol = serializers.CharField(help_text="Empty: every symbol.")
    pnl = PnLSerializer(help_text="From the exchange's ledger.")
    stats = TradeStatsSerializer(help_text="From our fills: trades that closed in the period.")
    max_drawdown = DrawdownSerializer(help_text="Of the whole account's equity curve, whatever the strategy or symbol.")
    current_drawdown = DrawdownSerializer()
    equity_resolution = serializers.CharField(help_text="What the curve the drawdowns are measured on is made of.")
    by_strategy = GroupSerializer(many=True)
    by_symbol = GroupSerializer(many=True)
    by_side = GroupSerializer(many=True)
    days = PeriodPnLSerializer(many=True, help_text="Per UTC day, newest first: the latest 92 days.")
    weeks = PeriodPnLSerializer(many=True, help_text="Per ISO week, newest first.")
    months = PeriodPnLSerializer(many=True, help_text="Per calendar month, newest first.")
    latency = LatencySerializer(many=True)
    latency_sampled = serializers.IntegerField(help_text=f"Executions read for the latency (at most {LATENCY_SAMPLE}).")
    cache_seconds = serializers.IntegerField(help_text="How old the figures may be (a new row shows at once).")


class AccountSnapshotSerializer(AmountModelSerializer):
    class Meta:
        model = AccountSnapshot
        fields = ["id", "taken_at", "exchange", "account", "asset", "wallet_balance", "available_balance", "equity",
                  "unrealized_pnl"]
        read_only_fields = fields


# --- the query ---------------------------------------------------------------------------------------
class DayField(serializers.DateField):
    """A day as the schema's `format: date` writes it, YYYY-MM-DD: Django also reads 2024-1-5, 20240105
    and 2024-W01-5."""

    def to_internal_value(self, value: object) -> date:
        if not (isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class SummaryQuery(serializers.Serializer):
    period = serializers.ChoiceField(choices=[value for value, _label in PERIOD_CHOICES], required=False)
    start = DayField(required=False)
    end = DayField(required=False)
    strategy = StrictCharField(required=False)
    symbol = StrictCharField(required=False)


TEXT = {"type": "string", "minLength": 1, "pattern": NO_NUL}
SUMMARY_PARAMETERS = [
    OpenApiParameter("period", OpenApiTypes.STR, enum=[value for value, _label in PERIOD_CHOICES],
                     description="Default 30d. `range` (implied by start or end) is every day from start to end; "
                     "without either, all time."),
    OpenApiParameter("start", OpenApiTypes.DATE, description="First UTC day of a chosen range."),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last UTC day of a chosen range (inclusive). Before "
                     "start: an empty period, whose figures are zero."),
    OpenApiParameter("strategy", TEXT, description="One strategy (exactly as its alerts name it)."),
    OpenApiParameter("symbol", TEXT, description="One symbol."),
]


# --- views ---------------------------------------------------------------------------------------------


class AnalyticsSummary(APIView):
    """The analytics page's figures for a period, a strategy and a symbol: net P&L from the exchange's
    ledger, trade statistics from the fills, drawdowns from the account snapshots, the day / week / month
    breakdown and the latency percentiles per stage. The definitions are the page's (/ui/analytics/)."""

    @extend_schema(
        parameters=SUMMARY_PARAMETERS,
        responses={200: AnalyticsSummarySerializer,
                   400: bad_request("A parameter is empty or not what the schema says; the body names it and why.")},
    )
    def get(self, request: Request) -> Response:
        exchange = get_exchange()
        window, strategy, symbol = summary_filter(request.query_params)
        scope = Scope(account=exchange.account_id, exchange=exchange.name, start=window.start, end=window.end,
                      strategy=strategy, symbol=symbol)
        performance, equity = cached_performance(scope), cached_equity(scope)
        return Response(AnalyticsSummarySerializer({
            "period": window, "account": scope.account, "exchange": scope.exchange, "strategy": strategy,
            "symbol": symbol, "pnl": performance.pnl, "stats": performance.stats,
            "max_drawdown": equity.drawdowns.max, "current_drawdown": equity.drawdowns.current,
            "equity_resolution": equity.resolution, "by_strategy": performance.by_strategy,
            "by_symbol": performance.by_symbol, "by_side": performance.by_side, "days": performance.days,
            "weeks": performance.weeks, "months": performance.months, "latency": performance.latency,
            "latency_sampled": performance.latency_sampled, "cache_seconds": CACHE_SECONDS,
        }).data)


def summary_filter(params: QueryDict) -> tuple[Window, str, str]:
    """The period's window, the strategy and the symbol ("": every one); a 400 for a bad parameter."""
    query = SummaryQuery(data=params)
    refuse_empty_values(params, list(query.fields))
    query.is_valid(raise_exception=True)
    chosen = query.validated_data
    strategy, symbol = chosen.get("strategy", ""), chosen.get("symbol", "")
    start, end = chosen.get("start"), chosen.get("end")
    if start and end and start > end:
        # The page refuses this; the API's schema cannot relate two parameters, so it answers the empty span.
        moment = datetime.combine(start, time(0), tzinfo=UTC)
        return Window(moment, moment, f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"), strategy, symbol
    days = QueryDict(mutable=True)
    days.update({name: str(chosen[name]) for name in ("period", "start", "end") if name in chosen})
    form = PerformanceFilterForm(days, strategies=[], symbols=[])
    return form.window(now=timezone.now()), strategy, symbol


@extend_schema_view(get=extend_schema(responses={200: AccountSnapshotSerializer(many=True), 404: PAGE_NOT_FOUND}))
class AccountHistory(generics.ListAPIView):
    """The account's balance snapshots (the account this deployment trades now), newest first."""

    serializer_class = AccountSnapshotSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[AccountSnapshot]:
        # Read off the (account, -taken_at) index: no sort of the account's whole history.
        return AccountSnapshot.objects.filter(account=get_exchange().account_id).order_by("-taken_at")


# --- replays (issue #21; analytics/replay_runs.py) ------------------------------------------------------
# RFC 3339, as the schema's `format: date-time` says: a date, a time and an offset (Z or ±hh:mm).
DATE_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
BIGINT_MAX = 2**63 - 1


@extend_schema_field({"type": "string", "format": "date-time"})
class MomentField(serializers.DateTimeField):
    """A date-time with its offset, as the schema's `format: date-time` (RFC 3339) writes it: DRF also
    reads a naive time or a day alone."""

    def to_internal_value(self, value: object) -> datetime:
        if not (isinstance(value, str) and re.fullmatch(DATE_TIME, value)):
            self.fail("invalid", format="YYYY-MM-DDThh:mm:ssZ")
        return super().to_internal_value(value)


@extend_schema_field({"type": "number", "minimum": 0, "maximum": int(MAX_SLIPPAGE_BPS),  # a whole number of bps
                      "description": "Basis points (0.01 %) every simulated fill is moved against the trader; "
                      "default 2. Kept to 2 decimals."})
class BasisPointsField(serializers.Field):
    def to_internal_value(self, data: object) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, int | Decimal) or not Decimal(data).is_finite():
            raise serializers.ValidationError("give a number of basis points.")
        if not ZERO <= Decimal(data) <= MAX_SLIPPAGE_BPS:
            raise serializers.ValidationError(f"{data} is not from 0 to {MAX_SLIPPAGE_BPS}.")
        return Decimal(data).quantize(Decimal("0.01"))

    def to_representation(self, value: Decimal) -> str:
        return format(value.normalize(), "f")


def overrides_schema() -> dict[str, Any]:
    return {
        "type": "object", "additionalProperties": False,
        "description": "Settings to change for the second replay, {preference type: value}, each as "
        "POST /preferences/{type} takes it; {} replays the recorded settings twice.",
        "properties": {kind: value_schema(kind, PREFERENCE_TYPES[kind]) for kind in REPLAY_TYPES},
    }


@extend_schema_field(overrides_schema())
class OverridesField(serializers.Field):
    def to_internal_value(self, data: object) -> dict[str, object]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("give an object: {preference type: value}.")
        return data

    def to_representation(self, value: dict[str, object]) -> dict[str, object]:
        return value


class ReplayRequestSerializer(serializers.Serializer):
    strategy = StrictCharField(regex=NOT_BLANK, max_length=100, help_text="The strategy, as its alerts name it.")
    preferences = OverridesField(required=False, default=dict)
    slippage_bps = BasisPointsField(required=False, default=DEFAULT_SLIPPAGE_BPS)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = MomentField(help_text="The period's start (inclusive); at most 90 days before `to`.")
        fields["to"] = MomentField(help_text="The period's end (exclusive); not in the future.")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Each override through the preferences API's value check, its error under its type."""
        for kind, value in attrs["preferences"].items():
            if kind not in REPLAY_TYPES:
                raise serializers.ValidationError({kind: [f"not a setting the replay simulates: {', '.join(REPLAY_TYPES)}."]})
            attrs["preferences"][kind] = value_read(kind, PREFERENCE_TYPES[kind], value)
        return attrs


class ReplayQueuedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class CurvePointSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    equity = Money()


class ReplayColumnSerializer(serializers.Serializer):
    net_pnl = Money(help_text="realized − fees + funding")
    realized_pnl = Money()
    fees = Money(help_text="Commissions paid, ≥ 0.")
    funding = Money(help_text="Signed: positive received.")
    trades = serializers.IntegerField(help_text="Closing fills (Reality: closing orders).")
    win_rate = Money(help_text="Percent of winning closing fills; null without wins or losses.")
    profit_factor = Money(help_text="Σ wins ÷ |Σ losses|; null without a loss.")
    max_drawdown = Money()
    max_drawdown_pct = Money()
    equity_curve = CurvePointSerializer(many=True)


class AlertOutcomeSerializer(serializers.Serializer):
    outcome = serializers.CharField(help_text="trade, nothing, filtered or refused")
    reason = serializers.CharField()
    size = Money(help_text="The quantity the alert's own fills traded.")
    exits = serializers.CharField(help_text="The closing fills it led to, e.g. \"stop-loss\".")
    net_pnl = Money()


class DifferenceSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    symbol = serializers.CharField()
    action = serializers.CharField()
    recorded = AlertOutcomeSerializer()
    changed = AlertOutcomeSerializer()


class ReplayRunSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    strategy = serializers.CharField()
    preferences = serializers.JSONField(source="overrides", help_text="The settings changed, as requested.")
    slippage_bps = AmountField()
    status = serializers.CharField(help_text="queued, running, done or failed")
    progress = serializers.IntegerField(help_text="0 to 100.")
    stage = serializers.CharField()
    error = serializers.CharField(help_text="Why a failed run failed; empty otherwise.")
    created_by = serializers.CharField(help_text="Who asked for it (username).")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(source="start")
        fields["to"] = serializers.DateTimeField(source="end")
        return fields


class ReplayRunSerializer(ReplayRunSummarySerializer):
    reality = ReplayColumnSerializer(source="outcome.reality", allow_null=True,
                                     help_text="From the exchange's ledger; null until done.")
    recorded = ReplayColumnSerializer(source="outcome.recorded", allow_null=True,
                                      help_text="Replay under the settings the strategy had at the period's start.")
    changed = ReplayColumnSerializer(source="outcome.changed", allow_null=True,
                                     help_text="Replay under those settings with `preferences` applied.")
    differences = DifferenceSerializer(source="outcome.differences", many=True, allow_null=True,
                                       help_text=f"The alerts whose outcome differs, at most {DIFFERENCES_MAX}.")
    differences_total = serializers.IntegerField(source="outcome.differences_total", allow_null=True)
    alerts = serializers.IntegerField(source="outcome.alerts", allow_null=True, help_text="Alerts replayed.")
    notes = serializers.ListField(child=serializers.CharField(), source="outcome.notes", allow_null=True)


RUN_ID = OpenApiParameter("run_id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH)
NO_RUN = OpenApiResponse(DETAIL, description="No such replay (or deleted).")
BAD_RUN_ID = bad_request("The id is not a whole number from 1.")


def replay_of(run_id: str) -> ReplayRun:
    if not (run_id.isascii() and run_id.isdigit()) or int(run_id) < 1:
        raise ValidationError({"run_id": ["a whole number from 1."]})
    if int(run_id) > BIGINT_MAX:
        raise NotFound("No such replay.")
    run = ReplayRun.objects.filter(pk=int(run_id)).first()
    if run is None:
        raise NotFound("No such replay.")
    return run


class ReplayList(APIView):
    """What-if replays of a strategy's recorded alerts (docs/REPLAY.md): list the recent ones, or ask
    for one. The worker runs it; poll GET /replay/{id} for its progress and result."""

    parser_classes = [DecimalJSONParser]

    @extend_schema(responses={200: ReplayRunSummarySerializer(many=True)})
    def get(self, request: Request) -> Response:
        runs = ReplayRun.objects.order_by("-created_at", "-id")[:RECENT_REPLAYS]
        return Response(ReplayRunSummarySerializer(runs, many=True).data)

    @extend_schema(
        request=ReplayRequestSerializer,
        responses={202: ReplayQueuedSerializer,
                   400: bad_request("A field is missing or bad; the body names it (an override under its preference "
                                    "type). Also a period in the future, longer than 90 days or empty."),
                   403: FORBIDDEN,
                   404: OpenApiResponse(DETAIL, description="No strategy of that name.")},
    )
    def post(self, request: Request) -> Response:
        data = ReplayRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        chosen = data.validated_data
        if not StrategyPreference.objects.filter(name=chosen["strategy"]).exists():
            raise NotFound(f"No strategy named {chosen['strategy']!r}.")
        run = replay_request(chosen["strategy"], chosen["from"], chosen["to"], chosen["preferences"],
                             chosen["slippage_bps"], request.user)
        return Response(ReplayQueuedSerializer({"id": run.pk, "status": run.status}).data, status=202)


class ReplayDetail(APIView):
    """One replay: its progress while queued or running, then Reality beside the two replays, the
    alerts whose outcome differs, and notes on what the replay could not know. Kept until deleted."""

    @extend_schema(parameters=[RUN_ID], responses={200: ReplayRunSerializer, 400: BAD_RUN_ID, 404: NO_RUN})
    def get(self, request: Request, run_id: str) -> Response:
        return Response(ReplayRunSerializer(replay_of(run_id)).data)

    @extend_schema(parameters=[RUN_ID], responses={204: None, 400: BAD_RUN_ID, 403: FORBIDDEN, 404: NO_RUN})
    def delete(self, request: Request, run_id: str) -> Response:
        replay_of(run_id).delete()
        return Response(status=204)
