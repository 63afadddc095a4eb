"""The floor's one view: parse, INSERT with a unique key, LPUSH, answer 202."""

import json
from functools import cache

import redis
from django.conf import settings
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from floor.models import FloorSignal


@cache
def _redis() -> redis.Redis:
    """One connection pool per process, as the real app's broker keeps one."""
    return redis.Redis.from_url(settings.REDIS_URL)


def receive(request: HttpRequest) -> HttpResponse:
    """The minimum the webhook must do for a new signal: store it once, queue it, say so."""
    if request.method != "POST":
        return JsonResponse({"status": "rejected", "error": "POST only"}, status=405)
    data = json.loads(request.body)
    try:
        row = FloorSignal.objects.create(key=str(data["id"]), received_at=timezone.now())
    except IntegrityError:
        return JsonResponse({"status": "duplicate"}, status=200)
    _redis().lpush(settings.FLOOR_LIST_KEY, str(row.pk))
    return JsonResponse({"status": "queued", "signal_id": row.pk}, status=202)


def health(request: HttpRequest) -> HttpResponse:
    """What bench/common.py's start-up wait polls."""
    return JsonResponse({"status": "ok"})
