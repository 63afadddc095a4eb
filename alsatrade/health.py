"""GET /health: is this deployment able to take and execute signals right now?"""

import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from trading.models import Signal, WorkerHeartbeat

HEARTBEAT_MAX_AGE = timedelta(seconds=150)  # the worker beats every minute
BACKLOG_MAX_AGE = timedelta(seconds=30)
EXCHANGE_CACHE_SECONDS = 10


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def check_queue() -> dict:
    beat = WorkerHeartbeat.objects.filter(name="worker").first()
    age = (timezone.now() - beat.beat_at) if beat else None
    stuck = Signal.objects.filter(status=Signal.Status.QUEUED, received_at__lt=timezone.now() - BACKLOG_MAX_AGE).count()
    ok = age is not None and age <= HEARTBEAT_MAX_AGE and stuck == 0
    result = {"ok": ok, "heartbeat_age_s": None if age is None else round(age.total_seconds(), 1), "stuck_signals": stuck}
    if beat is None:
        result["error"] = "no worker has reported yet (is `manage.py qcluster` running?)"
    elif age > HEARTBEAT_MAX_AGE:
        result["error"] = "the worker's last heartbeat is too old"
    elif stuck:
        result["error"] = f"{stuck} signal(s) queued for over {BACKLOG_MAX_AGE.seconds}s"
    return result


def check_exchange() -> dict:
    # Cached briefly so a monitor polling every second does not spend exchange request weight.
    result = cache.get("health:exchange")
    if result is None:
        result = _probe_exchange()
        cache.set("health:exchange", result, EXCHANGE_CACHE_SECONDS)
    return result


def _probe_exchange() -> dict:
    from trading.exchange import ExchangeError, get_exchange

    exchange = get_exchange()
    started = time.time()
    try:
        server_ms = exchange.server_time_ms()
    except ExchangeError as error:
        return {"ok": False, "name": exchange.name, "error": error.reason}
    ended = time.time()
    offset_ms = server_ms - int((started + ended) / 2 * 1000)
    round_trip_ms = round((ended - started) * 1000, 1)
    # Signed requests fail (-1021) once local time runs 1 s ahead of the server's.
    ok = abs(offset_ms) < 1000
    return {"ok": ok, "name": exchange.name, "clock_offset_ms": offset_ms, "round_trip_ms": round_trip_ms}


@require_GET
def health(request) -> JsonResponse:
    checks = {}
    for name, check in (("database", check_database), ("queue", check_queue), ("exchange", check_exchange)):
        try:
            checks[name] = check()
        except Exception as error:  # a health check reports failures, it does not raise them
            checks[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "unhealthy", "exchange_mode": settings.EXCHANGE, **checks}
    return JsonResponse(body, status=200 if healthy else 503)
