"""The trader pages under /ui/: dashboard, executions, signals. Server-rendered; the dashboard's live
part is the same view answering htmx's poll with its fragment only (STYLE.md, Pages)."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Prefetch, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh
from django_htmx.middleware import HtmxDetails
from rest_framework.exceptions import ValidationError

from alsatrade.login_throttle import login_client_address
from analytics.allocation import Allocation, Holding, allocation_by_strategy
from analytics.dashboard import equity_points, freshness, strategy_locks
from analytics.forms import ExecutionFilterForm, SignalFilterForm
from analytics.models import AccountSnapshot, ReplayRun
from analytics.protective import execution_protection, live_protection, protection_asked
from analytics.replay_runs import DEFAULT_SLIPPAGE_BPS, MAX_SLIPPAGE_BPS, CurvePoint, replay_request
from analytics.timeline import decision_plan, sizing_rows, stage_timeline
from preferences.models import StrategyPreference
from trading.accounts import AccountError, account_halt, accounts_listed
from trading.api import account_summary
from trading.exchange import get_exchange
from trading.halt import halt_set, positions_flatten
from trading.halt_forms import HaltForm
from trading.intake import redact
from trading.models import Account, Execution, Order, Position, Signal, TradingHalt
from trading.models.account import DEFAULT

PAGE_SIZE = 50
RECENT_EXECUTIONS = 20
RECENT_EXCHANGE_ORDERS = 10
RECENT_REPLAYS = 50


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def login_required_polled(view: Callable[[HtmxHttpRequest], HttpResponse]) -> Callable[[HtmxHttpRequest], HttpResponse]:
    """login_required for a page that htmx polls: a poll from a page whose session has ended sends the
    whole window to the login page (a plain redirect, followed inside the poll, would put the login
    form into the polled fragment)."""

    @wraps(view)
    def wrapped(request: HtmxHttpRequest) -> HttpResponse:
        if request.htmx and not request.user.is_authenticated:
            return HttpResponseClientRedirect(redirect_to_login(request.get_full_path())["Location"])
        return login_required(view)(request)

    return wrapped


def _execution_rows() -> QuerySet[Execution]:
    # The lists show the signal's action; the decision and the raw payload are for the detail page.
    return Execution.objects.select_related("signal").defer("decision", "error_message", "signal__payload")


@require_GET
@login_required_polled
@vary_on_headers("HX-Request", "HX-Target")
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    if request.htmx and request.htmx.target == "locks":  # its own slower poll: a lock lasts minutes at least
        return render(request, "ui/dashboard/_locks.html", {"locks": strategy_locks(timezone.now())})
    # The account this deployment trades now: testnet and production keys are different accounts.
    exchange = get_exchange()
    account = exchange.account_id
    snapshot = AccountSnapshot.objects.filter(account=account).first()
    positions = _open_positions(exchange.name)
    allocation = _allocation(positions)
    live_protection(positions)  # after _allocation: the same rows, and one query for all their protective orders
    context = {
        "summary": account_summary(snapshot, positions),
        "allocation": allocation,
        "freshness": freshness(snapshot, now=timezone.now()),
        "executions": _execution_rows()[:RECENT_EXECUTIONS],
        # Orders the exchange reported without our sending them: stops, liquidations, trades by hand.
        "exchange_orders": list(Order.objects.exclude(source=Order.Source.SIGNAL).order_by("-id")[:RECENT_EXCHANGE_ORDERS]),
        "halt": TradingHalt.current(),
        # The traded account's own kill switch binds as the global one does (trading/halt.py opening_refusal).
        "account_halt": Account.objects.filter(name=DEFAULT, halted=True).first(),
        "now": timezone.now(),
    }
    if request.htmx:
        return render(request, "ui/dashboard/_live.html", context)
    kill_switch = {"form": HaltForm(instance=context["halt"]), "may_change": request.user.has_perm("trading.change_tradinghalt")}
    return render(request, "ui/dashboard.html", {**context, "equity_points": equity_points(account), "kill_switch": kill_switch,
                                                 "locks": strategy_locks(timezone.now())})


def _open_positions(exchange: str) -> QuerySet[Position]:
    """The open positions, each with the strategy whose execution last traded its symbol (and side) on
    this exchange, in the same query (see analytics.allocation for why a symbol goes to one strategy)."""
    last_trade = Order.objects.filter(
        symbol=OuterRef("symbol"), position_side=OuterRef("position_side"), executed_qty__gt=0,
        execution__exchange=exchange,
    ).order_by("-id").values("execution__strategy")[:1]
    return Position.objects.exclude(amount=0).annotate(last_strategy=Subquery(last_trade))


def _allocation(positions: QuerySet[Position]) -> list[Allocation]:
    # Iterating fills the queryset's cache: the positions table then reads the same rows, no second query.
    return allocation_by_strategy(
        Holding(position.symbol, position.amount, position.mark_price or position.entry_price,
                position.last_strategy or "")  # type: ignore[attr-defined]  # the annotation
        for position in positions
    )


@require_GET
@login_required
def execution_list(request: HttpRequest) -> HttpResponse:
    strategies = list(Execution.objects.order_by("strategy").values_list("strategy", flat=True).distinct())
    form = ExecutionFilterForm(request.GET, strategies=strategies)
    executions = _execution_rows()
    if form.is_valid():
        chosen = {field: value for field, value in form.cleaned_data.items() if value}
        executions = executions.filter(**chosen)
    page = Paginator(executions, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "ui/executions.html", {"form": form, "page": page})


@require_GET
@login_required
def execution_detail(request: HttpRequest, execution_id: int) -> HttpResponse:
    orders = Prefetch("orders", queryset=Order.objects.order_by("leg"))
    execution = get_object_or_404(
        Execution.objects.select_related("signal__preference").prefetch_related(orders, "protective_orders"), pk=execution_id)
    # The passphrase is never stored; redacting again keeps a future change to storage from leaking it here.
    payload = redact(execution.signal.payload) if isinstance(execution.signal.payload, dict) else {}
    plan = decision_plan(execution.decision)
    return render(request, "ui/execution.html", {
        "execution": execution,
        "payload_json": json.dumps(payload, indent=2, ensure_ascii=False),
        "plan": plan,
        "sizing": sizing_rows(plan.sizing) if plan else [],
        "decision_json": json.dumps(execution.decision, indent=2, ensure_ascii=False),
        "timeline": stage_timeline(execution),
        "protection": execution_protection(execution),
        "protection_asked": protection_asked(execution),
    })


@require_GET
@login_required
def signal_list(request: HttpRequest) -> HttpResponse:
    form = SignalFilterForm(request.GET)
    signals = Signal.objects.defer("payload").annotate(execution_pk=F("execution__id"))
    if form.is_valid() and form.cleaned_data["status"]:
        signals = signals.filter(status=form.cleaned_data["status"])
    page = Paginator(signals, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "ui/signals.html", {"form": form, "page": page})


@require_POST
@login_required
def halt_change(request: HttpRequest) -> HttpResponse:
    """The dashboard's kill switch: halt or resume, and optionally flatten (as POST /halt)."""
    if not request.user.has_perm("trading.change_tradinghalt"):
        return HttpResponseForbidden("You may look at the kill switch, not change it (trading.change_tradinghalt).")
    form = HaltForm(request.POST, instance=TradingHalt.current())
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(str(error) for error in errors)}" for field, errors in form.errors.items())
        # Plain text: the errors quote what was posted, which must never come back as markup.
        return HttpResponseBadRequest(problems, content_type="text/plain; charset=utf-8")
    who = request.user.get_username()
    halt_set(halted=form.cleaned_data["halted"], reason=form.cleaned_data["reason"], by=who,
             address=login_client_address(request))
    if form.cleaned_data["flatten"]:
        closing = positions_flatten(by=who)
        messages.warning(request, f"Closing {len(closing)} open position(s) now." if closing else "No open position to close.")
    messages.success(request, "Trading halted: opening orders are refused." if form.cleaned_data["halted"]
                     else "Trading resumed.")
    return redirect("ui:dashboard")


class AccountHaltForm(forms.Form):
    """An account's halt or resume on the accounts page. `halted` comes from the button pressed, as on
    the dashboard's kill switch."""

    halted = forms.TypedChoiceField(choices=[("true", "Halt"), ("false", "Resume")], coerce=lambda value: value == "true")
    reason = forms.CharField(max_length=255, required=False)
    flatten = forms.BooleanField(required=False)


@require_GET
@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    """The account registry: what each account is, as last read from its exchange, and its switch."""
    return render(request, "ui/accounts.html", {
        "accounts": accounts_listed(), "may_change": request.user.has_perm("trading.change_account"),
    })


@require_POST
@login_required
def account_halt_change(request: HttpRequest, name: str) -> HttpResponse:
    """An account's kill switch from the accounts page: the same as POST /accounts/{name}/halt."""
    if not request.user.has_perm("trading.change_account"):
        return HttpResponseForbidden("You may look at the accounts, not halt them (trading.change_account).")
    account = get_object_or_404(Account, name=name)
    form = AccountHaltForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(str(error) for error in errors)}" for field, errors in form.errors.items())
        return HttpResponseBadRequest(problems, content_type="text/plain; charset=utf-8")  # plain: never markup
    try:
        done = account_halt(account, **form.cleaned_data, by=request.user.get_username(),
                            address=login_client_address(request))
    except AccountError as error:
        messages.error(request, str(error))
        return redirect("ui:accounts")
    if form.cleaned_data["flatten"]:
        messages.warning(request, f"Closing {len(done.flattening)} open position(s) now." if done.flattening
                         else "No open position to close.")
    messages.success(request, f"Account {account.name} halted." if done.account.halted else f"Account {account.name} resumed.")
    return redirect("ui:accounts")


# --- replay (issue #21): what if the strategy's recorded alerts had met other settings ------------------
LADDER_EXAMPLE = '[{"pct": 2, "share": 50}, {"pct": 4, "share": 50}]'


class ReplayForm(forms.Form):
    """A replay's request. Times are UTC; a setting left empty keeps the recorded one."""

    strategy = forms.ChoiceField(choices=())
    start = forms.DateTimeField(label="From (UTC)", input_formats=["%Y-%m-%dT%H:%M"],
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    end = forms.DateTimeField(label="To (UTC)", input_formats=["%Y-%m-%dT%H:%M"],
                              widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    slippage_bps = forms.DecimalField(label="Slippage (bps)", min_value=0, max_value=MAX_SLIPPAGE_BPS, decimal_places=2,
                                      initial=DEFAULT_SLIPPAGE_BPS)
    leverage = forms.IntegerField(required=False)
    sizing = forms.ChoiceField(required=False, choices=[("", "as recorded"), *StrategyPreference.Sizing.choices])
    allocation = forms.DecimalField(label="Allocation %", required=False)
    stop_loss = forms.DecimalField(label="Stop-loss %", required=False, help_text="0: none")
    take_profit = forms.DecimalField(label="Take-profit %", required=False, help_text="0: none")
    take_profit_ladder = forms.CharField(label="Take-profit ladder", required=False,
                                         widget=forms.TextInput(attrs={"placeholder": LADDER_EXAMPLE}),
                                         help_text="Instead of one take-profit %, as JSON.")
    trailing_callback = forms.DecimalField(label="Trailing callback %", required=False)
    trailing_activation = forms.DecimalField(label="Trailing activation %", required=False)
    breakeven_after = forms.IntegerField(label="Breakeven after level", required=False)

    # The API's words (the override's preference type, the request's field) → this form's fields.
    ERROR_FIELDS = {"strategy": "strategy", "from": "start", "to": "end", "slippage_bps": "slippage_bps",
                    "leverage": "leverage", "sizing": "sizing", "allocation": "allocation", "stop_loss": "stop_loss",
                    "trailing_stop": "trailing_callback", "breakeven_after": "breakeven_after"}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        names = list(StrategyPreference.objects.order_by("name").values_list("name", flat=True))
        self.fields["strategy"].choices = [(name, name) for name in names]  # type: ignore[attr-defined]

    def clean_start(self) -> datetime:
        return _as_utc(self.cleaned_data["start"])

    def clean_end(self) -> datetime:
        return _as_utc(self.cleaned_data["end"])

    def overrides(self) -> dict[str, object]:
        """The settings changed, {preference type: value}, as the preferences API takes them."""
        data = self.cleaned_data
        chosen: dict[str, object] = {}
        for kind in ("leverage", "sizing", "allocation", "stop_loss", "take_profit", "breakeven_after"):
            if data.get(kind) not in (None, ""):
                chosen[kind] = data[kind]
        if data.get("take_profit_ladder"):
            chosen["take_profit"] = self.ladder()
        if data.get("trailing_callback") is not None:
            chosen["trailing_stop"] = {"callback": data["trailing_callback"],
                                       "activation_pct": data.get("trailing_activation")}
        return chosen

    def ladder(self) -> object:
        try:
            return json.loads(self.cleaned_data["take_profit_ladder"], parse_float=Decimal)
        except ValueError:
            return self.cleaned_data["take_profit_ladder"]  # the preferences API's check names what is wrong

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("take_profit") is not None and cleaned.get("take_profit_ladder"):
            self.add_error("take_profit_ladder", "Set either a take-profit % or a ladder, not both.")
        if cleaned.get("trailing_activation") is not None and cleaned.get("trailing_callback") is None:
            self.add_error("trailing_callback", "Give the callback too (the activation alone is not a trailing stop).")
        return cleaned

    def add_errors(self, errors: dict[str, list[str]]) -> None:
        for name, said in errors.items():
            target = self.ERROR_FIELDS.get(name)
            if name == "take_profit":
                target = "take_profit_ladder" if self.cleaned_data.get("take_profit_ladder") else "take_profit"
            for message in said:
                self.add_error(target, f"{name}: {message}" if target is None else message)


def _as_utc(moment: datetime) -> datetime:
    """The wall time typed, read as UTC (the page says so), whatever the server's zone."""
    return timezone.make_naive(moment).replace(tzinfo=UTC) if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def curve_points(curve: tuple[CurvePoint, ...]) -> list[dict[str, object]]:
    """An equity curve as the chart reads it: one point a second (the last of each), oldest first."""
    points: dict[int, Decimal] = {}
    for point in curve:
        points[int(point.time.timestamp())] = point.equity
    return [{"time": second, "value": value} for second, value in sorted(points.items())]


@login_required
def replay_page(request: HttpRequest) -> HttpResponse:
    """The request form and the past runs."""
    if request.method == "POST":
        form = ReplayForm(request.POST)
        if form.is_valid():
            chosen = form.cleaned_data
            try:
                run = replay_request(chosen["strategy"], chosen["start"], chosen["end"], form.overrides(),
                                     chosen["slippage_bps"], request.user)
            except ValidationError as error:
                detail = error.detail
                form.add_errors({str(name): [str(message) for message in (said if isinstance(said, list) else [said])]
                                 for name, said in detail.items()} if isinstance(detail, dict)
                                else {"strategy": [str(detail)]})
            else:
                return redirect("ui:replay-run", run_id=run.pk)
    else:
        end = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
        form = ReplayForm(initial={"start": end - timedelta(days=7), "end": end})
    runs = ReplayRun.objects.order_by("-created_at", "-id")[:RECENT_REPLAYS]
    return render(request, "ui/replay.html", {"form": form, "runs": runs})


def replay_run(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    """One run: its progress, polled every second while it is queued or running; then its result.
    Behind a login, as login_required_polled does it (a poll whose session ended sends the window away)."""
    if not request.user.is_authenticated:
        if request.htmx:
            return HttpResponseClientRedirect(redirect_to_login(request.get_full_path())["Location"])
        return redirect_to_login(request.get_full_path())
    run = get_object_or_404(ReplayRun, pk=run_id)
    if request.htmx:
        if not run.active:  # finished: the whole page again, so that its charts are drawn
            return HttpResponseClientRefresh()
        return render(request, "ui/replay/_progress.html", {"run": run})
    outcome = run.outcome
    columns = [] if outcome is None else [("Reality", "the exchange's ledger", outcome.reality),
                                          ("Replay, recorded settings", "as at the period's start", outcome.recorded),
                                          ("Replay, new settings", "with the changes", outcome.changed)]
    charts = [(f"replay-curve-{n}", title, curve_points(column.equity_curve)) for n, (title, _, column) in enumerate(columns)]
    return render(request, "ui/replay_run.html", {"run": run, "outcome": outcome, "columns": columns, "charts": charts,
                                                  "charted": any(points for _, _, points in charts)})


@login_required
@require_POST
def replay_delete(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(ReplayRun, pk=run_id)
    run.delete()
    messages.success(request, f"Replay #{run_id} deleted.")
    return redirect("ui:replay")
