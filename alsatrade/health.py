"""GET /health: is this deployment able to take and execute signals right now?

Anyone gets `{"status": "ok"|"unhealthy"}` (200/503), cached for PUBLIC_CACHE_SECONDS; each check's
detail goes only to a staff session or `Authorization: Bearer <HEALTH_TOKEN>`, never cached.
Exception text is logged, never answered.
"""

import hmac
import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Min
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from trading.models import Signal, WorkerHeartbeat

logger = logging.getLogger(__name__)
HEARTBEAT_MAX_AGE = timedelta(seconds=45)  # each worker process beats every 10 s (trading/recovery.py)
BACKLOG_MAX_AGE = timedelta(seconds=30)
STREAM_MAX_AGE = timedelta(seconds=60)  # the stream process beats every 15 s
EXCHANGE_CACHE_SECONDS = 10
# The anonymous answer is shared this long: a flood of probes costs one round of checks per interval.
PUBLIC_CACHE_SECONDS = 5
PUBLIC_CACHE_KEY = "health:public"
_public_check = threading.Lock()
WEIGHT_WARNING = 0.8  # of the request-weight limit: said in /health before Binance answers 429


def check_database() -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def check_migrations() -> dict[str, object]:
    """This code's migrations that the database lacks: processes of this release would meet columns
    that are not there (alsatrade/schema.py)."""
    from alsatrade.schema import unapplied_migrations, unapplied_said

    unapplied = unapplied_migrations()
    if not unapplied:
        return {"ok": True, "unapplied_migrations": []}
    return {"ok": False, "unapplied_migrations": unapplied,
            "error": f"{unapplied_said(unapplied)}: run manage.py migrate"}


def check_queue() -> dict[str, object]:
    from trading.recovery import worker_alive_at

    beat_at = worker_alive_at(max_age=HEARTBEAT_MAX_AGE)
    age = (timezone.now() - beat_at) if beat_at else None
    queued = Signal.objects.filter(status=Signal.Status.QUEUED).aggregate(count=Count("id"), oldest=Min("received_at"))
    stuck = Signal.objects.filter(status=Signal.Status.QUEUED, received_at__lt=timezone.now() - BACKLOG_MAX_AGE).count()
    # Every accepted signal ends final within EXECUTION_MAX_DELAY (plus a lookup's grace); one that
    # has not after twice that is work the engine lost track of.
    unfinished = Signal.objects.filter(
        status__in=(Signal.Status.QUEUED, Signal.Status.EXECUTING),
        received_at__lt=timezone.now() - timedelta(seconds=2 * settings.EXECUTION_MAX_DELAY),
    ).count()
    ok = age is not None and age <= HEARTBEAT_MAX_AGE and stuck == 0 and unfinished == 0
    result: dict[str, object] = {
        "ok": ok, "heartbeat_age_s": None if age is None else round(age.total_seconds(), 1),
        "queued_signals": queued["count"],
        "oldest_queued_s": round((timezone.now() - queued["oldest"]).total_seconds(), 1) if queued["oldest"] else None,
        "stuck_signals": stuck, "unfinished_signals": unfinished,
    }
    if age is None:
        result["error"] = (f"no live worker has beaten in the last {HEARTBEAT_MAX_AGE.seconds} s "
                           "(is `manage.py qcluster` running?)")
    elif stuck:
        result["error"] = f"{stuck} signal(s) queued for over {BACKLOG_MAX_AGE.seconds}s"
    elif unfinished:
        result["error"] = f"{unfinished} signal(s) not final {2 * settings.EXECUTION_MAX_DELAY} s after receipt"
    return result


def check_positions() -> dict[str, object]:
    """Drift the last reconciliation found between our Position mirror and the exchange (and
    corrected): a fill that reached the exchange but not our records. Reported, not failed."""
    from trading.upkeep import last_reconciliation

    last = last_reconciliation()
    if last is None:
        return {"ok": True, "last_reconciled_at": None, "drift": []}
    at, drift = last
    return {"ok": True, "last_reconciled_at": at.isoformat(timespec="seconds"), "drift": drift}


def check_protection() -> dict[str, object]:
    """Open positions left without the stop-loss / take-profit their strategy asks for."""
    from trading.protection import positions_unprotected

    alarms = positions_unprotected()
    return {"ok": not alarms, "unprotected_positions": alarms}


def check_user_stream() -> dict[str, object]:
    """The process applying the exchange's live events (`manage.py userstream`), with a real exchange."""
    from trading.live import HEARTBEAT

    beat = WorkerHeartbeat.objects.filter(name=HEARTBEAT).first()
    if beat is None:
        return {"ok": False, "error": "no user data stream process has reported (is `manage.py userstream` running?)"}
    age = (timezone.now() - beat.beat_at).total_seconds()
    result: dict[str, object] = {"ok": True, "heartbeat_age_s": round(age, 1), "detail": beat.detail}
    if age > STREAM_MAX_AGE.total_seconds():
        result.update(ok=False, error="the user data stream process's last heartbeat is too old")
    elif not beat.detail.startswith("connected"):
        result.update(ok=False, error="the user data stream is not connected; fills reach us by reconciliation only")
    return result


def check_exchange() -> dict[str, object]:
    # Cached briefly so a monitor polling every second does not spend exchange request weight.
    result: dict[str, object] | None = _cache_get("health:exchange")
    if result is None:
        result = _probe_exchange()
        _cache_set("health:exchange", result, EXCHANGE_CACHE_SECONDS)
    return result


def _probe_exchange() -> dict[str, object]:
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
    result: dict[str, object] = {"ok": ok, "name": exchange.name, "clock_offset_ms": offset_ms,
                                 "round_trip_ms": round_trip_ms}
    weight = exchange.request_weight()
    if weight is not None:  # per IP and minute: what every process on this address spent
        result.update(request_weight_used=weight[0], request_weight_limit=weight[1])
        if weight[0] >= weight[1] * WEIGHT_WARNING:
            result["warning"] = f"{weight[0]} of {weight[1]} request weight used this minute: close to Binance's limit"
    return result


EXCHANGE_SETUP_CACHE_SECONDS = 60


def exchange_setup() -> dict[str, object]:
    """For staff only, and not part of the status: the account's setup at the exchange, a line each
    (`manage.py exchange_check`). About 17 request weight, so read at most once a minute."""
    result: dict[str, object] | None = cache.get("health:exchange_setup")
    if result is None:
        try:
            from trading.account_setup import setup_check
            from trading.exchange import CheckState, get_exchange

            lines = setup_check(get_exchange())
            result = {"ok": all(line.state is not CheckState.FAILED for line in lines),
                      "lines": [{"name": line.name, "state": str(line.state), "text": line.text} for line in lines]}
        except Exception:  # reported, not raised; the text goes to the log only
            logger.exception("health: the exchange setup check failed")
            return {"ok": False, "error": "the check failed; the server's log says why"}
        cache.set("health:exchange_setup", result, EXCHANGE_SETUP_CACHE_SECONDS)
    return result


@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    if not may_see_detail(request):
        healthy = public_healthy()
        return JsonResponse({"status": "ok" if healthy else "unhealthy"}, status=200 if healthy else 503)
    checks = run_checks()  # the detail is always fresh: staff and monitors with the token are few
    healthy = all(check["ok"] for check in checks.values())
    body: dict[str, object] = {"status": "ok" if healthy else "unhealthy"}
    body.update({"exchange_mode": settings.EXCHANGE, **checks, "exchange_setup": exchange_setup()})
    return JsonResponse(body, status=200 if healthy else 503)


def public_healthy() -> bool:
    """The status alone, from Django's cache while it is younger than PUBLIC_CACHE_SECONDS."""
    with _public_check:  # probes arriving while one checks wait for its answer instead of checking too
        healthy: bool | None = _cache_get(PUBLIC_CACHE_KEY)
        if healthy is None:
            healthy = all(check["ok"] for check in run_checks().values())
            _cache_set(PUBLIC_CACHE_KEY, healthy, PUBLIC_CACHE_SECONDS)
    return healthy


def _cache_get(key: str) -> Any:  # noqa: ANN401 - whatever was stored
    """A cache that cannot be reached (Redis down) is a miss: the checks run, and say what is down."""
    try:
        return cache.get(key)
    except Exception as error:
        logger.warning("health: the cache is unreachable (%s); checking without it", type(error).__name__)
        return None


def _cache_set(key: str, value: object, seconds: int) -> None:
    try:
        cache.set(key, value, seconds)
    except Exception:  # already said by _cache_get
        pass


def run_checks() -> dict[str, dict[str, object]]:
    checks: dict[str, dict[str, object]] = {}
    named = [("database", check_database), ("migrations", check_migrations), ("queue", check_queue),
             ("exchange", check_exchange), ("protection", check_protection), ("positions", check_positions)]
    if settings.EXCHANGE != "paper":  # the paper exchange tells everything in its answers
        named.append(("user_stream", check_user_stream))
    for name, check in named:
        try:
            checks[name] = check()
        except Exception:  # a health check reports failures, it does not raise them
            logger.exception("health: the %s check failed", name)
            checks[name] = {"ok": False, "error": "the check failed; the server's log says why"}
    return checks


def may_see_detail(request: HttpRequest) -> bool:
    """A staff session, or the bearer token (compared in constant time, so timing reveals nothing)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = settings.HEALTH_TOKEN
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())
