import re
from io import StringIO
from urllib.parse import urlparse

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

API_PATHS = {
    "/executions", "/signals", "/orders", "/positions", "/account/summary", "/preferences/current", "/preferences/{type}",
    "/halt", "/analytics/summary", "/account/history",
}


def test_it_generates_the_schema_without_errors_or_warnings():
    out = StringIO()
    # --fail-on-warn turns any "could not resolve…" warning into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out)
    assert '"openapi": "3.0' in out.getvalue()


def test_it_serves_a_valid_openapi_3_schema():
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == API_PATHS
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])
    assert schema["components"]["schemas"]["Execution"]["properties"]["signal_price"]["type"] == "string"


def test_it_renders_the_docs_from_local_assets_only():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html
    urls = re.findall(r"https?://[^\s\"'<>)]+", html)
    outside = [url for url in urls if urlparse(url).hostname not in {"testserver", "localhost"}]
    assert outside == []
    assert '"validatorUrl": null' in html  # Swagger UI would otherwise ask validator.swagger.io
    assets = re.findall(r"/static/(drf_spectacular_sidecar/[^\"']+)", html)
    assert assets, "the page links no sidecar assets"
    for asset in assets:
        assert finders.find(asset), asset
