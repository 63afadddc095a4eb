"""The Content-Security-Policy header (django-csp): every page allows scripts from this server's own
files only, and no page needs more: no inline script, no inline event handler, no <style> block.
The browser tests (tests/ui/test_browser.py) check that Chromium reports no violation."""

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.test import Client

from tests.ui.records import make_account, make_execution

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='",
    "style-src-attr": "'unsafe-inline'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
PAGES = [
    "/ui/", "/ui/executions/", "/ui/signals/", "/ui/analytics/?period=all", "/ui/account/", "/ui/strategies/",
    "/ui/strategies/new/", "/admin/", "/admin/trading/tradinghalt/", "/admin/trading/tradinghalt/1/history/",
    "/admin/preferences/strategypreference/add/", "/api/docs/", "/executions?format=api",
]


def policy(response) -> dict[str, str]:
    directives = (part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    return {name: value for name, value in directives}


class InlineCode(HTMLParser):
    """Collects what a script-src 'self' policy refuses: <script> with code in it, on…= attributes,
    <style> blocks, javascript: links."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.found += [f"<{tag} {name}=…>" for name, _ in attrs if name.startswith("on")]
        if (named.get("href") or "").startswith("javascript:"):
            self.found.append(f"<{tag} href=javascript:…>")
        if tag == "style":
            self.found.append("<style>")
        if tag == "script":
            self._script = named

    def handle_data(self, data: str) -> None:
        # A json_script data block is not run, so the policy allows it.
        if self._script is not None and data.strip() and self._script.get("type") != "application/json":
            self.found.append(f"<script>{data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


@pytest.fixture
def staff_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_it_sends_the_policy_with_the_login_page():
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert policy(response) == POLICY
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["script-src"] == ["'self'"]


def test_it_sends_the_policy_with_every_page_and_no_page_has_inline_code(staff_client):
    # The checker finds what it looks for, and lets pass what the policy allows.
    assert inline_code('<script src="/static/a.js"></script><script type="application/json">{"a": 1}</script>') == []
    assert inline_code('<script>go()</script><b onclick="go()"><a href="javascript:go()"><style>p {}</style>') == [
        "<script>go()", "<b onclick=…>", "<a href=javascript:…>", "<style>"]
    make_account()
    make_execution(1)
    for path in PAGES + [f"/ui/executions/{make_execution(2).pk}/"]:
        response = staff_client.get(path, follow=True)
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith("text/html"), path
        assert policy(response) == POLICY, path
        assert inline_code(response.content.decode()) == [], path


def test_it_sends_the_policy_with_a_refusal_and_an_api_answer_too(staff_client):
    assert policy(Client().get("/ui/")) == POLICY  # the redirect to the login page
    assert policy(staff_client.get("/executions", HTTP_ACCEPT="application/json")) == POLICY


def test_it_serves_the_swagger_set_up_as_a_script_of_this_server(staff_client):
    html = staff_client.get("/api/docs/").content.decode()
    assert re.search(r'<script src="/api/docs/\?script="></script>', html)
    script = staff_client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


def test_it_allows_exactly_the_chart_logo_style_of_the_vendored_charts():
    """lightweight-charts' attribution logo writes one <style> element; a new version of the library
    with another text would be refused by browsers: this says so before they do."""
    source = (settings.BASE_DIR / "static/vendor/lightweight-charts/lightweight-charts.standalone.production.js").read_text()
    [style] = re.findall(r'createElement\("style"\),this\.\w+\.innerText="([^"]*)"', source)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"] == ["'self'", f"'sha256-{digest}'"]

