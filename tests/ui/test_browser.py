"""The pages in a real browser (Debian's chromium driven by Playwright): log in, open every page on a
desktop and a phone, and watch the dashboard pick up a new execution without a reload.

Screenshots land in tmp/screenshots/ (git-ignored) for a human to look at.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.ui.records import make_account, make_execution
from trading.models import Signal

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = settings.BASE_DIR / "tmp" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    # Playwright's sync API keeps an event loop running in this thread, and Django then refuses every
    # ORM call made here (SynchronousOnlyOperation), the tests' own set-up and database flush included,
    # though nothing async touches them. Allowed for as long as the browser lives, then restored.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            yield browser
            browser.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def trader(django_user_model):
    return django_user_model.objects.create_user("trader", password="a-trader-password")


class Visit:
    """One browser context (desktop or phone) that records page errors and every URL it requested."""

    def __init__(self, browser, base_url: str, viewport: dict[str, int], *, phone: bool) -> None:
        self.context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
        self.page = self.context.new_page()
        self.base_url = base_url
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("request", lambda request: self.requests.append(request.url))

    def log_in(self) -> None:
        self.page.goto(f"{self.base_url}/ui/")
        assert "/accounts/login/" in self.page.url
        self.page.fill("input[name=username]", "trader")
        self.page.fill("input[name=password]", "a-trader-password")
        self.page.click("button:has-text('Log in')")
        self.page.wait_for_url(f"{self.base_url}/ui/")

    def outside_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith((self.base_url, "data:"))]


def pages(execution_pk: int) -> dict[str, str]:
    return {
        "dashboard": "/ui/",
        "executions": "/ui/executions/",
        "execution": f"/ui/executions/{execution_pk}/",
        "signals": "/ui/signals/",
        "analytics": "/ui/analytics/?period=all",
        "account": "/ui/account/",
        "strategies": "/ui/strategies/",
        "strategy-new": "/ui/strategies/new/",
    }


def seed() -> int:
    make_account()
    make_execution(5, status="rejected", reason="Binance -2019: margin is insufficient.", fill_price=None,
                   slippage_bps=None)
    make_execution(4, status="nothing", reason="nothing to close: the position is flat", symbol="ETHUSDT")
    make_execution(3, status="partial", strategy="ALSAPRO 2")
    make_execution(2, status="running")
    Signal.objects.create(status="rejected", http_status=401, reason="bad passphrase", source_ip="203.0.113.9")
    Signal.objects.create(status="filtered", http_status=200, reason="strategy ALSAPRO 3 is disabled", action="sell",
                          symbol="SOLUSDT", strategy="ALSAPRO 3", idempotency_key="f1", source_ip="52.89.214.238")
    return make_execution(1).pk


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_it_shows_every_page(browser, live_server, trader, device):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone = device == "phone"
    visit = Visit(browser, live_server.url, PHONE if phone else DESKTOP, phone=phone)
    visit.page.goto(f"{live_server.url}/accounts/login/")
    visit.page.screenshot(path=SCREENSHOTS / f"login-{device}.png", full_page=True)
    visit.log_in()
    visit.page.screenshot(path=SCREENSHOTS / f"dashboard-empty-{device}.png", full_page=True)
    for name, path in pages(seed()).items():
        visit.page.goto(f"{live_server.url}{path}")
        if name == "dashboard":
            visit.page.wait_for_selector("#equity-chart canvas")
        visit.page.screenshot(path=SCREENSHOTS / f"{name}-{device}.png", full_page=True)
        if phone:
            widths = visit.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], f"{path} scrolls sideways on a phone: {widths}"
    assert visit.errors == []
    assert visit.outside_requests() == []
    visit.context.close()


def test_it_shows_a_new_execution_without_reloading(browser, live_server, trader):
    make_account()
    visit = Visit(browser, live_server.url, DESKTOP, phone=False)
    visit.log_in()
    visit.page.evaluate("window.stillThisPage = true")
    assert visit.page.locator("#live tbody a").count() == 0

    execution = make_execution(1)

    visit.page.wait_for_selector(f"#live tbody a[href='/ui/executions/{execution.pk}/']", timeout=10_000)
    assert visit.page.evaluate("window.stillThisPage") is True
    assert visit.errors == []
    visit.context.close()

