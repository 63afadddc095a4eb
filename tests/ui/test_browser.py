"""The pages in a real browser (Debian's chromium driven by Playwright): log in, open every page on a
desktop and a phone, watch the dashboard pick up a signal posted to /webhook without a reload, change a
strategy on its configuration page and read the change back from the API, and find the page read-only
without the permission.

Screenshots land in tmp/screenshots/ (git-ignored) for a human to look at; the README's dashboard
images are copies of dashboard-desktop.png and dashboard-phone.png (docs/screenshots/).
"""

import json
import os
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from preferences.models import StrategyPreference
from tests.support.queue import run_queued_jobs
from tests.ui.records import make_account, make_execution
from trading.models import Execution, Order, Position, Signal
from trading.webhook import RATE_LIMITER

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


PASSWORD = "a-user-password"


@pytest.fixture
def trader(django_user_model):
    """A trader account: reads everything, changes nothing."""
    return django_user_model.objects.create_user("trader", password=PASSWORD)


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("staff", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="preferences", codename__in=["change_strategypreference", "add_strategypreference"]
    ))
    return user


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"], leverage=5,
                                             allocation_pct=Decimal("10"))


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

    def log_in(self, username: str = "trader") -> None:
        self.page.goto(f"{self.base_url}/ui/")
        assert "/accounts/login/" in self.page.url
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button:has-text('Log in')")
        self.page.wait_for_url(f"{self.base_url}/ui/")

    def fetch(self, path: str, *, method: str = "GET", form: dict[str, str] | None = None, data: dict | None = None) -> dict:
        """A request from the page itself, with its session cookie (and its CSRF token for a POST): a
        form's fields, or `data` as JSON (the API takes JSON only)."""
        return self.page.evaluate("""async ([path, method, form, data]) => {
            const token = document.querySelector("input[name=csrfmiddlewaretoken]");
            const body = data ? JSON.stringify(data) : form ? new URLSearchParams(form) : undefined;
            const headers = {"Accept": "application/json"};
            if (token) headers["X-CSRFToken"] = token.value;
            if (data) headers["Content-Type"] = "application/json";
            const response = await fetch(path, {method, body, headers, credentials: "same-origin"});
            const text = await response.text();
            return {status: response.status, text};
        }""", [path, method, form, data])

    def outside_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith((self.base_url, "data:"))]

    def policy_violations(self) -> list[str]:
        """What Chromium refused under the Content-Security-Policy (it says so on the console)."""
        return [error for error in self.errors if "Content Security Policy" in error]

    def close(self) -> None:
        """Every test ends here: no page broke the policy, nor anything else."""
        assert self.policy_violations() == []
        assert self.errors == []
        self.context.close()


def pages(execution_pk: int, strategy_pk: int) -> dict[str, str]:
    return {
        "dashboard": "/ui/",
        "executions": "/ui/executions/",
        "execution": f"/ui/executions/{execution_pk}/",
        "signals": "/ui/signals/",
        "analytics": "/ui/analytics/?period=all",
        "account": "/ui/account/",
        "strategies": "/ui/strategies/",
        "strategy": f"/ui/strategies/{strategy_pk}/",
        "strategy-new": "/ui/strategies/new/",
    }


def seed() -> int:
    make_account()
    # Beside make_account's ETHUSDT short: two more positions, for the allocation chart.
    Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.111"), entry_price=Decimal("45000.5"),
                            mark_price=Decimal("45210"), unrealized_pnl=Decimal("23.2"), leverage=5, margin_type="cross")
    Position.objects.create(symbol="SOLUSDT", amount=Decimal("12"), entry_price=Decimal("151.2"),
                            mark_price=Decimal("150.4"), unrealized_pnl=Decimal("-9.6"), leverage=3, margin_type="isolated")
    make_execution(6, strategy="TREND", symbol="SOLUSDT")
    make_execution(5, status="rejected", reason="Binance -2019: margin is insufficient.", fill_price=None,
                   slippage_bps=None)
    make_execution(4, status="nothing", reason="nothing to close: the position is flat", symbol="ETHUSDT")
    make_execution(3, status="partial", strategy="ALSAPRO 2")
    make_execution(2, status="running")
    # Orders the exchange reported (the user data stream): a stop-loss that triggered, a trade by hand.
    Order.objects.create(execution=None, source=Order.Source.STOP_LOSS, client_order_id="algo_5521",
                         exchange_order_id="5521", symbol="BTCUSDT", side="SELL", quantity=Decimal("0.05"),
                         executed_qty=Decimal("0.05"), avg_price=Decimal("44100"), realized_pnl=Decimal("-45.03"),
                         status=Order.Status.FILLED, purpose="close", acknowledged_at=timezone.now())
    Order.objects.create(execution=None, source=Order.Source.MANUAL, client_order_id="web_8f2a11c0d4",
                         exchange_order_id="5530", symbol="SOLUSDT", side="BUY", quantity=Decimal("2"),
                         executed_qty=Decimal("2"), avg_price=Decimal("150.9"), status=Order.Status.FILLED,
                         purpose="add", acknowledged_at=timezone.now())
    Signal.objects.create(status="rejected", http_status=401, reason="bad passphrase", source_ip="203.0.113.9")
    Signal.objects.create(status="filtered", http_status=200, reason="strategy ALSAPRO 3 is disabled", action="sell",
                          symbol="SOLUSDT", strategy="ALSAPRO 3", idempotency_key="f1", source_ip="52.89.214.238")
    return make_execution(1).pk


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_it_shows_every_page(browser, live_server, trader, strategy, device):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone = device == "phone"
    visit = Visit(browser, live_server.url, PHONE if phone else DESKTOP, phone=phone)
    visit.page.goto(f"{live_server.url}/accounts/login/")
    visit.page.screenshot(path=SCREENSHOTS / f"login-{device}.png", full_page=True)
    visit.log_in()
    visit.page.screenshot(path=SCREENSHOTS / f"dashboard-empty-{device}.png", full_page=True)
    for name, path in pages(seed(), strategy.pk).items():
        visit.page.goto(f"{live_server.url}{path}")
        if name == "dashboard":
            visit.page.wait_for_selector("#equity-chart canvas")
        visit.page.screenshot(path=SCREENSHOTS / f"{name}-{device}.png", full_page=True)
        if phone:
            widths = visit.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], f"{path} scrolls sideways on a phone: {widths}"
    assert visit.outside_requests() == []
    visit.close()


def test_it_shows_a_new_execution_without_reloading(browser, live_server, trader):
    make_account()
    visit = Visit(browser, live_server.url, DESKTOP, phone=False)
    visit.log_in()
    visit.page.evaluate("window.stillThisPage = true")
    assert visit.page.locator("#live tbody a").count() == 0

    execution = make_execution(1)

    visit.page.wait_for_selector(f"#live tbody a[href='/ui/executions/{execution.pk}/']", timeout=10_000)
    assert visit.page.evaluate("window.stillThisPage") is True
    visit.close()


def alert(**fields) -> dict:
    return {"action": "buy", "symbol": "BTCUSDT", "price": 45000, "strategy": "ALSAPRO 1",
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"), "id": "browser-1",
            "passphrase": settings.WEBHOOK_PASSPHRASE, **fields}


def post_webhook(base_url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base_url}/webhook", json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_it_shows_a_signal_posted_to_the_webhook_without_reloading(browser, live_server, trader, strategy):
    RATE_LIMITER.reset()
    make_account()
    visit = Visit(browser, live_server.url, DESKTOP, phone=False)
    visit.log_in()
    visit.page.evaluate("window.stillThisPage = true")
    assert visit.page.locator("#live tbody a").count() == 0

    status, answer = post_webhook(live_server.url, alert())
    assert (status, answer["status"]) == (202, "queued")
    assert run_queued_jobs() == 1  # what the worker would do, in this process
    execution = Execution.objects.get(signal_id=answer["signal_id"])
    assert execution.status == "filled"

    row = visit.page.wait_for_selector(f"#live tbody tr:has(a[href='/ui/executions/{execution.pk}/'])", timeout=10_000)
    assert "Filled" in row.inner_text() and "BTCUSDT" in row.inner_text()
    visit.page.wait_for_selector("#live [data-strategy='ALSAPRO 1']")  # the new BTCUSDT position, in the chart too
    assert visit.page.evaluate("window.stillThisPage") is True
    visit.close()


def test_it_changes_a_preference_on_the_configuration_page_that_the_api_then_reads(browser, live_server, staff, strategy):
    visit = Visit(browser, live_server.url, DESKTOP, phone=False)
    visit.log_in("staff")
    visit.page.goto(f"{live_server.url}/ui/strategies/{strategy.pk}/")
    assert visit.page.input_value("#id_leverage") == "5"
    visit.page.fill("#id_leverage", "12")
    visit.page.click("button[type=submit]:has-text('Save')")
    visit.page.wait_for_selector("text=Saved ALSAPRO 1.")
    assert visit.page.input_value("#id_leverage") == "12"

    answer = visit.fetch("/preferences/current")
    assert answer["status"] == 200
    [current] = json.loads(answer["text"])
    assert (current["name"], current["leverage"]) == ("ALSAPRO 1", 12)
    strategy.refresh_from_db()
    assert strategy.leverage == 12
    visit.close()


def test_it_shows_a_trader_without_the_permission_a_read_only_form(browser, live_server, trader, strategy):
    visit = Visit(browser, live_server.url, DESKTOP, phone=False)
    visit.log_in()
    visit.page.goto(f"{live_server.url}/ui/strategies/{strategy.pk}/")
    assert "Read only" in visit.page.inner_text(".alert-warn")
    assert visit.page.is_disabled("#id_leverage") and visit.page.is_disabled("#id_products")
    assert visit.page.locator("button[type=submit]:has-text('Save')").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    visit.page.screenshot(path=SCREENSHOTS / "strategy-read-only-desktop.png", full_page=True)

    # Past the page: the same session posting the form, and the API, are both refused.
    page_post = visit.fetch(f"/ui/strategies/{strategy.pk}/", method="POST", form={
        "name": "ALSAPRO 1", "products": "BTCUSDT", "direction": "both", "leverage": "50", "margin_type": "cross",
        "sizing": "allocation", "allocation_pct": "10", "price_tolerance_pct": "5"})
    assert page_post["status"] == 403
    api_post = visit.fetch("/preferences/leverage", method="POST", data={"strategy": "ALSAPRO 1", "value": 50})
    assert api_post["status"] == 403 and "permission" in api_post["text"]
    strategy.refresh_from_db()
    assert strategy.leverage == 5
    assert visit.policy_violations() == []  # the console has the refused requests' 403s, nothing else to read
    visit.context.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_an_operator_halts_trading_from_the_dashboard(browser, live_server, staff, device):
    from trading.models import TradingHalt

    staff.user_permissions.add(Permission.objects.get(codename="change_tradinghalt"))
    make_account()
    phone = device == "phone"
    visit = Visit(browser, live_server.url, PHONE if phone else DESKTOP, phone=phone)
    visit.log_in("staff")
    visit.page.fill(".kill-switch input[name=reason]", "exchange maintenance")
    visit.page.click(".kill-switch button[value=true]")
    visit.page.wait_for_selector("text=Trading halted: opening orders are refused.")
    assert "Trading is halted." in visit.page.locator(".slot-status[role=status]").inner_text()
    assert TradingHalt.current().reason == "exchange maintenance"
    assert "Last change: halted by staff" in visit.page.inner_text(".slot-kill")
    visit.page.screenshot(path=SCREENSHOTS / f"dashboard-halted-{device}.png", full_page=True)
    if phone:
        widths = visit.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"the halted dashboard scrolls sideways on a phone: {widths}"
    visit.page.click(".kill-switch button[value=false]")
    visit.page.wait_for_selector("text=Trading resumed.")
    assert not TradingHalt.current().halted
    visit.close()


def test_the_admin_and_the_api_docs_work_under_the_content_security_policy(browser, live_server, django_user_model):
    from trading.halt import halt_set

    django_user_model.objects.create_superuser("root", password=PASSWORD)
    halt_set(halted=True, reason="exchange maintenance", by="root", address="203.0.113.9")
    visit = Visit(browser, live_server.url, DESKTOP, phone=False)
    visit.log_in("root")
    response = visit.page.goto(f"{live_server.url}/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    visit.page.wait_for_selector(".swagger-ui .opblock-tag", timeout=15_000)  # drawn by its script file
    visit.page.screenshot(path=SCREENSHOTS / "api-docs-desktop.png", full_page=True)
    visit.page.goto(f"{live_server.url}/admin/trading/tradinghalt/")
    visit.page.click("a.historylink")
    assert "203.0.113.9" in visit.page.inner_text("#content") and "exchange maintenance" in visit.page.inner_text("#content")
    visit.page.goto(f"{live_server.url}/admin/preferences/strategypreference/add/")
    visit.page.wait_for_selector("input[name=name]")
    visit.page.goto(f"{live_server.url}/executions")  # the browsable API
    visit.page.wait_for_selector("text=Execution List")
    visit.close()

