import re
from io import StringIO
from urllib.parse import quote, urlparse

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from preferences.api import PREFERENCE_TYPES

pytestmark = pytest.mark.django_db

API_PATHS = {
    "/executions", "/signals", "/orders", "/positions", "/account/summary", "/preferences/current", "/halt",
    "/analytics/summary", "/account/history", "/accounts", "/accounts/{name}/halt", "/replay", "/replay/{run_id}",
    # POST /preferences/{type}: one operation per type, each with its own value (alsatrade/openapi.py).
    *(f"/preferences/{kind}" for kind in PREFERENCE_TYPES),
}


def test_it_generates_the_schema_without_errors_or_warnings():
    out = StringIO()
    # --fail-on-warn turns any "could not resolve…" warning into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out)
    assert '"openapi": "3.0' in out.getvalue()


@pytest.fixture
def browser(client, reader):
    """A logged-in user's browser session (the docs page fetches the schema with its cookie)."""
    client.force_login(reader)
    return client


def test_it_serves_a_valid_openapi_3_schema(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == API_PATHS
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])
    assert schema["components"]["schemas"]["Execution"]["properties"]["signal_price"]["type"] == "string"


def test_it_renders_the_docs_from_local_assets_only(browser):
    response = browser.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html
    urls = re.findall(r"https?://[^\s\"'<>)]+", html)
    outside = [url for url in urls if urlparse(url).hostname not in {"testserver", "localhost"}]
    assert outside == []
    # Its set-up is a script file of its own (the Content-Security-Policy allows no inline script).
    script = browser.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert '"validatorUrl": null' in script.content.decode()  # Swagger UI would otherwise ask validator.swagger.io
    assets = re.findall(r"/static/(drf_spectacular_sidecar/[^\"']+)", html)
    assert assets, "the page links no sidecar assets"
    for asset in assets:
        assert finders.find(asset), asset


@pytest.mark.parametrize("headers", [{}, {"HTTP_AUTHORIZATION": "Token not-a-token-0123456789"}])
def test_it_refuses_the_schema_without_a_login_or_token(headers):
    for url in ("/api/schema/", "/api/schema/?format=json"):
        response = APIClient().get(url, **headers)
        assert response.status_code == 401
        assert b"paths" not in response.content and b"/executions" not in response.content


def test_it_serves_the_schema_to_a_logged_in_session(browser):
    response = browser.get("/api/schema/?format=json")
    assert response.status_code == 200 and "/executions" in response.json()["paths"]


@pytest.mark.parametrize("url", ["/api/docs/", "/api/docs/?script="])
def test_it_sends_an_anonymous_visitor_of_the_docs_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={quote(url)}"
    assert b"validatorUrl" not in response.content


def test_it_serves_the_docs_to_an_api_token(api):
    assert api.get("/api/docs/").status_code == 200
