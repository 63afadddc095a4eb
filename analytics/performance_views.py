"""The analytics and account-history pages under /ui/: server-rendered, charts drawn by the vendored
lightweight-charts from data embedded in the page (json_script)."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from analytics.ledger import ledger_as_of
from analytics.metrics import BREAK_EVEN
from analytics.models import AccountSnapshot
from analytics.performance import CACHE_SECONDS, LATENCY_SAMPLE, Scope, cached_equity, cached_performance
from analytics.performance_forms import PerformanceFilterForm
from trading.exchange import get_exchange
from trading.models import Execution

PAGE_SIZE = 50


@require_GET
@login_required
def analytics(request: HttpRequest) -> HttpResponse:
    exchange = get_exchange()
    form = PerformanceFilterForm(request.GET, strategies=_distinct("strategy"), symbols=_distinct("symbol"))
    window = form.window(now=timezone.now())
    scope = Scope(account=exchange.account_id, exchange=exchange.name, start=window.start, end=window.end,
                  strategy=form.choice("strategy"), symbol=form.choice("symbol"))
    performance = cached_performance(scope)
    by = form.choice("by") or "day"
    return render(request, "ui/analytics.html", {
        "form": form,
        "window": window,
        "scope": scope,
        "performance": performance,
        "equity": cached_equity(scope),
        "by": by,
        "breakdown": {"day": performance.days, "week": performance.weeks, "month": performance.months}[by],
        "break_even": BREAK_EVEN,
        "latency_sample": LATENCY_SAMPLE,
        "cache_seconds": CACHE_SECONDS,
        "ledger_as_of": ledger_as_of(exchange.account_id),
    })


def _distinct(field: str) -> list[str]:
    # Both columns are indexed: the database reads the names from the index.
    return list(Execution.objects.order_by(field).values_list(field, flat=True).distinct())


@require_GET
@login_required
def account_history(request: HttpRequest) -> HttpResponse:
    exchange = get_exchange()
    # Newest first by id: the worker writes each snapshot as it takes it, so id order is time order, and
    # it reads straight off the account index where ordering by taken_at sorts the account's whole history.
    snapshots = AccountSnapshot.objects.filter(account=exchange.account_id).order_by("-id")
    page = Paginator(snapshots, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "ui/account.html", {
        "account": exchange.account_id,
        "page": page,
        "equity": cached_equity(Scope(account=exchange.account_id, exchange=exchange.name)),
    })
