"""Property-based fuzzing of the REST API with schemathesis: the schema is exact (issue #17), and
no 5xx in ≥ 500 examples (issue #8).

The OpenAPI schema is loaded in-process from /api/schema/'s view, and every operation it describes
(GET and POST) is called through the WSGI app with generated requests, valid and deliberately invalid
ones (schemathesis' examples, coverage and fuzzing phases), as a superuser with `Authorization: Token
…`. Every check schemathesis has runs on every answer: no 5xx; every status code, body, content type
and header as documented; a request the schema allows is never refused with a 400, one it refuses
never accepted; without the token a 401; 405 with `Allow` for a method an operation lacks.
`st run <schema> --checks all` against a running server does the same from outside (docs/DEPLOY.md).

The run is deterministic (Hypothesis' derandomize, no example database): CI sends the same requests
on every run, so a failure reproduces and a pass does not flake. A random run seldom reaches the ends
of the calendar, so every date and date-time query parameter is also tried at its limits.

The schema is loaded when the module is imported, as schemathesis' pytest integration expects:
its fixture-based loader (schemathesis.pytest.from_fixture) breaks on pytest 9.2, which removed
`Node._nodeid`.
"""

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.wsgi import get_wsgi_application
from django.urls import resolve
from django.utils import timezone
from hypothesis import HealthCheck, settings
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.test import APIRequestFactory, force_authenticate
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from analytics.models import AccountSnapshot
from preferences.models import StrategyPreference
from tests.api.records import make_execution
from trading.models import Position

# Hypothesis' budget per operation in the fuzzing phase; the examples and coverage phases add their
# own boundary and invalid cases on top (most of the requests).
MAX_EXAMPLES = 5
# Issue #8's floor for the whole run.
MIN_TOTAL = 500
# The superuser's token, known before the fixture stores it because the schema's headers are set here.
TOKEN = "f022" * 16
load_all_checks()
EVERY_CHECK = CHECKS.get_all()


def served_schema() -> dict:
    """/api/schema/ as a logged-in user gets it (it refuses anyone else). It is read at import, before
    the test database exists, so the user is handed to the view rather than looked up."""
    request = APIRequestFactory().get("/api/schema/", {"format": "json"})
    force_authenticate(request, user=get_user_model()(username="schema-reader"))
    return json.loads(resolve("/api/schema/").func(request).render().content)


# The project's schemathesis.toml, as `st run` reads it from the project root: nothing else changes the run.
CONFIG = SchemathesisConfig.from_path(Path(__file__).resolve().parents[2] / "schemathesis.toml")
schema = schemathesis.openapi.from_dict(served_schema(), config=CONFIG)
schema.app, schema.location = get_wsgi_application(), "/api/schema/?format=json"  # calls go to the app in-process
schema.config.update(headers={"Authorization": f"Token {TOKEN}"})
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
OPERATIONS = {result.ok().label for result in schema.get_all_operations()}

# Values a random run seldom reaches, for every date and date-time query parameter in the schema: the
# ends of the calendar once a time is moved to UTC or a day is made exclusive, and ISO 8601 offsets
# that Python reads but PostgreSQL refuses (beyond ±15:59).
LIMITS = {
    "date": ["0001-01-01", "9999-12-31"],
    "date-time": [
        "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-01-01T00:00:00+23:59",
        "2024-01-01T00:00:00-23:59",
    ],
}
TIME_PARAMETERS = [
    (path, parameter["name"], value)
    for path, item in schema.raw_schema["paths"].items()
    for parameter in item.get("get", {}).get("parameters", [])
    if parameter["in"] == "query"
    for value in LIMITS.get(parameter.get("schema", {}).get("format", ""), [])
]


@pytest.fixture(scope="module")
def calls() -> Iterator[Counter[str]]:
    """Requests sent per operation; once every operation has run, there must be MIN_TOTAL in all."""
    counter: Counter[str] = Counter()
    yield counter
    total = sum(counter.values())
    print(f"\nschemathesis requests per operation: {dict(sorted(counter.items()))}; total {total}")
    if set(counter) == OPERATIONS:  # not when -k picked a few operations
        assert total >= MIN_TOTAL, f"only {total} requests: {dict(counter)}"


@pytest.fixture
def api_data(django_user_model) -> None:
    """The token's superuser, and a few rows of each kind so that every list answers with data."""
    now = timezone.now()
    for n in range(3):
        make_execution(n, received_at=now - timedelta(hours=n), orders=2, strategy=f"ALSAPRO {n % 2 + 1}")
    make_execution(3, received_at=now - timedelta(days=2), status="failed", symbol="ETHUSDT")
    Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.002"), entry_price=Decimal("45000"), leverage=5)
    Position.objects.create(symbol="ETHUSDT", amount=Decimal("-0.5"), entry_price=Decimal("2500.10"))
    Position.objects.create(symbol="SOLUSDT", amount=Decimal("0"))
    AccountSnapshot.objects.create(
        taken_at=now - timedelta(seconds=30), exchange="paper", account="paper", wallet_balance=Decimal("10000"),
        available_balance=Decimal("9500.25"), equity=Decimal("9987.5"), unrealized_pnl=Decimal("-12.5"),
    )
    StrategyPreference.objects.create(name="ALSAPRO 1")
    admin = django_user_model.objects.create_superuser("fuzzer", password="a-fuzzer-password")
    AuthToken(user=admin, digest=hash_token(TOKEN), token_key=TOKEN[: CONSTANTS.TOKEN_KEY_LENGTH]).save()


# Committed data: the WSGI handler closes the connection after each request (request_finished),
# which would end a test's wrapping transaction.
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
# The rows are shared by all of an operation's examples on purpose (the API only reads them, or
# changes preferences and the halt flag, which any state may have).
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_api_answers_as_its_schema_says(case, api_data, calls):
    calls[case.operation.label] += 1
    case.call_and_validate(checks=EVERY_CHECK)


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "name", "value"), TIME_PARAMETERS)
def test_a_time_at_the_limits_answers_no_5xx(api, path, name, value):
    # The test client re-raises a view's exception: a 5xx fails here with its traceback.
    assert api.get(path, {name: value}).status_code < 500
