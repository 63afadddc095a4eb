"""POST /webhook skips the middleware it does not use (trading.webhook.WebhookFastPath) and answers
exactly as the full stack (every middleware, DRF's view) would: same status, body, headers, records."""

import json
import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from preferences.models import StrategyPreference
from tests.support.queue import queued_jobs
from trading.models import Signal
from trading.webhook import RATE_LIMITER

FAST_PATH = "trading.webhook.WebhookFastPath"
PASSPHRASE = "test-passphrase-0123456789"


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    RATE_LIMITER.reset()
    yield
    RATE_LIMITER.reset()


@pytest.fixture
def strategy(db) -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"])


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert(**changes) -> dict:
    data = {"action": "buy", "symbol": "BTCUSDT", "quantity": "0.001", "price": "45000", "strategy": "ALSAPRO 1",
            "time": now(), "passphrase": PASSPHRASE}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not ...}


def answer(response) -> tuple[int, dict, dict]:
    """Status, body and headers, with what differs between two stored signals (their ids) set aside."""
    body = response.json() if response.get("Content-Type") == "application/json" else {"html": response.content.decode()}
    if "signal_id" in body:
        body["signal_id"] = "<id>"
    if "error" in body:
        body["error"] = seconds(body["error"])
    headers = dict(response.headers)
    # A page policy (django-csp) means nothing on the webhook's JSON answer: the fast path leaves it out
    # on purpose, as settings.MIDDLEWARE says.
    headers.pop("Content-Security-Policy", None)
    length = headers.pop("Content-Length", None)  # absent on an error page raised before CommonMiddleware
    assert length is None or int(length) == len(response.content)
    return response.status_code, body, headers


def last_record() -> dict:
    row = Signal.objects.order_by("-id").values(
        "status", "http_status", "reason", "strategy", "symbol", "action", "source_ip", "payload", "duplicate_count",
    ).first()
    if row and "id" in row["payload"]:
        row["payload"]["id"] = "<id>"
    if row:
        row["reason"] = seconds(row["reason"])
    return row or {}


def seconds(text: str) -> str:
    """A stale signal's age ("sent 95.3 s ago") moves on between the two runs of a case."""
    return re.sub(r"\d+\.\d s", "<n> s", text)


CASES = {
    "queued": ({}, {}),
    "text/plain": ({}, {"content_type": "text/plain"}),
    "trailing slash": ({}, {"path": "/webhook/"}),
    "wrong passphrase": ({"passphrase": "wrong"}, {}),
    "bad field": ({"quantity": "-1"}, {}),
    "stale": ({"time": "2020-01-01T00:00:00Z"}, {}),
    "not configured": ({"strategy": "NOPE"}, {}),
    "not a product": ({"symbol": "SOLUSDT"}, {}),
    "malformed": ("{not json", {}),
    "too large": ({"comment": "x" * 70_000}, {}),
    "forwarded from an untrusted peer": ({}, {"HTTP_X_FORWARDED_FOR": "52.89.214.238"}),
    "host not allowed": ({}, {"HTTP_HOST": "evil.example.com"}),
}


def post(client: Client, data, *, path: str = "/webhook", content_type: str = "application/json", **headers):
    body = data if isinstance(data, str) else json.dumps(data)
    return client.post(path, body, content_type=content_type, **headers)


@pytest.mark.parametrize("case", CASES)
def test_it_answers_and_records_exactly_as_the_full_stack(strategy, settings, case):
    changes, options = CASES[case]
    if isinstance(changes, dict):
        changes = {"time": now(), **changes}  # one time for both runs: their records compare
    runs = []
    for fast in (True, False):
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if fast or m != FAST_PATH]
        assert (FAST_PATH in settings.MIDDLEWARE) is fast
        data = changes if isinstance(changes, str) else alert(id=f"{case}-{fast}", **changes)
        runs.append((answer(post(Client(), data, **options)), last_record()))
    assert runs[0] == runs[1]


def test_it_answers_a_resend_and_a_flood_exactly_as_the_full_stack(strategy, settings):
    settings.WEBHOOK_RATE_BURST, settings.WEBHOOK_RATE_PER_SECOND = 2, 1
    runs = []
    for fast in (True, False):
        RATE_LIMITER.reset()
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if fast or m != FAST_PATH]
        client, data = Client(), alert(id=f"resend-{fast}")
        runs.append([answer(post(client, data)) for _ in range(3)])  # queued, duplicate, 429
    assert runs[0] == runs[1]
    assert [status for status, _, _ in runs[0]] == [202, 200, 429] and "Retry-After" in runs[0][2][2]


def test_it_redirects_plain_http_when_asked_as_before(strategy, settings):
    """SecurityMiddleware still runs first: with SECURE_SSL_REDIRECT a plain-HTTP post is redirected."""
    settings.SECURE_SSL_REDIRECT = True
    response = post(Client(), alert())
    assert response.status_code == 301 and response["Location"] == "https://testserver/webhook"
    assert post(Client(), alert(), secure=True).status_code == 202


def test_it_keeps_the_security_headers(strategy):
    response = post(Client(), alert())
    assert response.status_code == 202
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"
    assert response["Content-Type"] == "application/json" and response["Allow"] == "POST, OPTIONS"


def test_it_answers_a_post_without_sessions_users_or_cookies(strategy, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)  # no CSRF token, as TradingView sends none
    with django_capture_on_commit_callbacks(execute=True):  # the Redis broker queues on commit
        response = post(client, alert())
    assert response.status_code == 202 and len(queued_jobs()) == 1
    request = response.wsgi_request
    assert not hasattr(request, "session") and not hasattr(request, "user") and not hasattr(request, "htmx")
    assert not response.cookies and "Vary" not in response


@pytest.mark.django_db
def test_other_methods_and_urls_still_get_the_full_stack():
    client = Client()
    refused = client.get("/webhook")
    assert refused.status_code == 405 and refused.json() == {"detail": 'Method "GET" not allowed.'}
    assert hasattr(refused.wsgi_request, "session") and hasattr(refused.wsgi_request, "user")
    health = client.get("/health")
    assert hasattr(health.wsgi_request, "session") and hasattr(health.wsgi_request, "htmx")
    options = client.options("/webhook")
    assert options.status_code == 200 and options["Allow"] == "POST, OPTIONS"


def test_it_stands_aside_when_common_middleware_has_more_to_do(strategy, settings):
    settings.DISALLOWED_USER_AGENTS = [re.compile("BadBot")]
    response = post(Client(), alert(), HTTP_USER_AGENT="BadBot/1.0")
    assert response.status_code == 403  # CommonMiddleware's answer, as before the fast path
    assert post(Client(), alert(id="fine")).status_code == 202


@pytest.mark.parametrize("changes", [{}, {"symbol": "SOLUSDT"}], ids=["queued", "filtered"])
def test_it_reads_the_strategy_once_and_writes_the_signal_once(strategy, django_assert_num_queries, changes):
    """One SELECT of the strategy's few checked fields (no deferred field read later), one INSERT; the
    savepoint around it only because a test runs inside a transaction; the ORM broker's job row."""
    from trading.queue import uses_orm_broker

    strategy.set_passphrase("own-secret-phrase")
    strategy.max_signal_age = 300
    strategy.save()
    queued = not changes
    expected = 1 + 3 + (1 if uses_orm_broker() and queued else 0)
    with django_assert_num_queries(expected):
        response = post(Client(), alert(passphrase="own-secret-phrase", **changes))
    assert response.status_code == (202 if queued else 200)
