"""The configuration pages under /ui/strategies/: every strategy at a glance, one strategy's settings
through StrategyPreferenceForm (the admin's and the API's own form, so the three never disagree), its
own webhook passphrase set or rotated, and the TradingView alert message to paste."""

import json
import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.forms import BoundField
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from preferences.forms import StrategyPreferenceForm
from preferences.models import StrategyPreference
from trading.engine import plain
from trading.rehearsal import rehearse
from trading.risk import strategy_lock

ADD = "preferences.add_strategypreference"
CHANGE = "preferences.change_strategypreference"
# The freshly generated passphrase waits here between the POST that made it and the page that shows
# it, and is taken out as it is shown: only the hash is kept anywhere for longer.
SHOW_ONCE = "strategies:new-passphrase"
PASSPHRASE_PLACEHOLDER = "PASTE THE PASSPHRASE HERE"
PASSPHRASE_FIELDS = ("new_passphrase", "clear_passphrase")
SECTIONS = (
    ("Strategy", ("name", "enabled", "products", "notes")),
    ("Trading", (
        "direction", "sizing", "allocation_pct", "risk_pct", "max_position_usdt", "leverage", "margin_type",
        "price_tolerance_pct",
    )),
    ("Entries", ("entry", "entry_offset_pct", "entry_timeout", "on_timeout")),
    ("Protection and risk", (
        "stop_loss", "take_profit", "take_profit_ladder", "breakeven_after", "breakeven_to", "trailing_stop",
        "max_daily_loss", "max_open_positions", "max_adds", "sync_to_alert", "halted_until",
    )),
    ("Protections", (
        "cooldown_after_loss", "max_trades_per_day", "loss_streak_limit", "max_drawdown_pct", "drawdown_locked_at",
        "trading_hours",
    )),
    ("Webhook", ("max_signal_age", *PASSPHRASE_FIELDS)),
)


@require_GET
@login_required
def strategy_list(request: HttpRequest) -> HttpResponse:
    return render(request, "ui/strategies.html", {
        "strategies": StrategyPreference.objects.all(),
        "may_add": request.user.has_perm(ADD),
    })


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def strategy_new(request: HttpRequest) -> HttpResponse:
    return _edit(request, StrategyPreference(), permission=ADD)


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def strategy_edit(request: HttpRequest, strategy_id: int) -> HttpResponse:
    return _edit(request, get_object_or_404(StrategyPreference, pk=strategy_id), permission=CHANGE)


def _edit(request: HttpRequest, strategy: StrategyPreference, *, permission: str) -> HttpResponse:
    may_save = request.user.has_perm(permission)
    if request.method == "POST":
        if not may_save:
            raise PermissionDenied(f"Saving a strategy needs the {permission} permission.")
        form = StrategyPreferenceForm(request.POST, instance=strategy)
        if form.is_valid():
            with transaction.atomic():
                saved = form.save()
            messages.success(request, f"Saved {saved.name}.")
            return redirect("strategies:edit", saved.pk)
    else:
        form = StrategyPreferenceForm(instance=strategy, initial=_normalised_amounts(strategy))
    if not may_save:
        for field in form.fields.values():
            field.disabled = True
    return render(request, "ui/strategies_edit.html", {
        "strategy": strategy,
        "form": form,
        "sections": _sections(form, may_save=may_save),
        "may_save": may_save,
        "may_rotate": bool(strategy.pk) and request.user.has_perm(CHANGE),
        "lock": strategy_lock(strategy, now=timezone.now()) if strategy.pk else None,
        "may_clear_lock": request.user.has_perm(CHANGE),
        "new_passphrase": _take_new_passphrase(request, strategy),
        "alert_message": alert_message(strategy.name) if strategy.pk else "",
        "rehearse_message": alert_message(strategy.name) if strategy.pk else "",
        "webhook_url": request.build_absolute_uri("/webhook"),
    })


@require_POST
@login_required
def passphrase_rotate(request: HttpRequest, strategy_id: int) -> HttpResponse:
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied(f"Setting a strategy's passphrase needs the {CHANGE} permission.")
    passphrase = secrets.token_urlsafe(24)
    with transaction.atomic():
        strategy = get_object_or_404(StrategyPreference.objects.select_for_update(), pk=strategy_id)
        # Only the hash is saved; from this commit on the old passphrase (or WEBHOOK_PASSPHRASE) is refused.
        strategy.set_passphrase(passphrase)
        strategy.save(update_fields=["passphrase_hash", "updated_at"])
    request.session[SHOW_ONCE] = {"strategy": strategy.pk, "passphrase": passphrase}
    return redirect("strategies:edit", strategy.pk)


@require_POST
@login_required
def alert_rehearse(request: HttpRequest, strategy_id: int) -> HttpResponse:
    """The "Test an alert" box: what the webhook and a worker would do with the pasted message now
    (trading/rehearsal.py); nothing is stored or sent, so viewing the strategy is permission enough.
    htmx gets the result alone; a browser without JavaScript gets it on a page of its own."""
    strategy = get_object_or_404(StrategyPreference, pk=strategy_id)
    message = request.POST.get("message", "")
    context = {"strategy": strategy, "rehearsal": rehearse(message, strategy), "rehearse_message": message}
    template = "ui/strategies/_rehearsal.html" if request.headers.get("HX-Request") else "ui/strategies/rehearsal.html"
    return render(request, template, context)


@require_POST
@login_required
def drawdown_lock_clear(request: HttpRequest, strategy_id: int) -> HttpResponse:
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied(f"Clearing a strategy's drawdown lock needs the {CHANGE} permission.")
    with transaction.atomic():
        strategy = get_object_or_404(StrategyPreference.objects.select_for_update(), pk=strategy_id)
        if strategy.drawdown_locked_at is not None:
            strategy.drawdown_clear()
            strategy.save(update_fields=["drawdown_locked_at", "drawdown_since", "updated_at"])
            messages.success(request, f"Cleared the drawdown lock of {strategy.name}: its drawdown is measured from now.")
    return redirect("strategies:edit", strategy.pk)


def _take_new_passphrase(request: HttpRequest, strategy: StrategyPreference) -> str:
    """The passphrase just generated for this strategy, once; taken out of the session either way."""
    if request.method != "GET" or SHOW_ONCE not in request.session:
        return ""
    waiting = request.session.pop(SHOW_ONCE)
    return waiting["passphrase"] if strategy.pk and waiting.get("strategy") == strategy.pk else ""


def _normalised_amounts(strategy: StrategyPreference) -> dict[str, str]:
    # The inputs show 10, not the stored 10.0000.
    decimals = [field.name for field in strategy._meta.fields if isinstance(field, models.DecimalField)]
    return {name: plain(value) for name in decimals if (value := getattr(strategy, name)) is not None}


def _sections(form: StrategyPreferenceForm, *, may_save: bool) -> list[tuple[str, list[BoundField]]]:
    """The form's fields grouped as the admin groups them, any field not named here in a last group
    (a setting added to the form shows up here without a change); a reader sees no passphrase inputs."""
    shown = [name for name in form.fields if may_save or name not in PASSPHRASE_FIELDS]
    grouped = {name for _title, names in SECTIONS for name in names}
    sections = [(title, [form[name] for name in names if name in shown]) for title, names in SECTIONS]
    sections.append(("More", [form[name] for name in shown if name not in grouped]))
    return [(title, fields) for title, fields in sections if fields]


def alert_message(strategy_name: str) -> str:
    """The TradingView alert message for a strategy, in the fields docs/TRADINGVIEW.md describes.

    Not JSON until TradingView fills it in: `{{close}}` and `{{strategy.position_size}}` stand bare so
    they arrive as JSON numbers. The passphrase is a placeholder: the real one is never shown again
    after it was made, and a message left on the screen or in a screenshot must not carry it.
    """
    fields = [
        ("action", '"{{strategy.order.action}}"'),
        ("symbol", '"{{ticker}}"'),
        ("price", "{{close}}"),
        ("quantity", '"{{strategy.order.contracts}}"'),
        ("market_position", '"{{strategy.market_position}}"'),
        ("prev_market_position", '"{{strategy.prev_market_position}}"'),
        ("position_size", "{{strategy.position_size}}"),
        ("strategy", json.dumps(strategy_name, ensure_ascii=False)),
        ("time", '"{{timenow}}"'),
        ("id", '"{{strategy.order.id}}-{{timenow}}"'),
        ("passphrase", json.dumps(PASSPHRASE_PLACEHOLDER)),
    ]
    return "{\n" + ",\n".join(f'  "{key}": {value}' for key, value in fields) + "\n}"
