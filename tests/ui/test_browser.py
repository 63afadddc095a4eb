"""The pages in a real browser (Debian's chromium driven by Playwright): log in, open every page on a
desktop and a phone, watch the dashboard pick up a signal posted to /webhook without a reload, change a
strategy on its configuration page and read the change back from the API, and find the page read-only
without the permission. Protective orders too: an execution's on its page, each open position's on the
dashboard, a strategy's entry and take-profit ladder set through its page.

Screenshots land in tmp/screenshots/ (git-ignored) for a human to look at; the README's dashboard
images are copies of dashboard-desktop.png and dashboard-phone.png (docs/screenshots/).
"""

import json
import os
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from preferences.models import StrategyPreference
from tests.support.queue import run_queued_jobs
from tests.ui.records import make_account, make_execution, make_protective
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


def fits_the_phone(visit: "Visit", what: str) -> None:
    """Nothing wider than the phone's screen. Against the screen's width, not window.innerWidth: on a
    phone (is_mobile) Chromium widens the layout viewport to the widest content, innerWidth with it."""
    widths = visit.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth, window.visualViewport.width]")
    assert max(widths[:2]) <= PHONE["width"], f"{what} scrolls sideways on a phone: {widths}"


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
        "accounts": "/ui/accounts/",
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
            fits_the_phone(visit, path)
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
        fits_the_phone(visit, "the halted dashboard")
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


def in_view(visit, selector: str) -> None:
    """Scrolled to (a table scrolls sideways inside its .table-wrap on a phone), the element is whole
    inside the window: nothing of it is cut off to the left or right."""
    element = visit.page.locator(selector)
    element.scroll_into_view_if_needed()
    box = element.bounding_box()
    width = visit.page.evaluate("Math.min(window.innerWidth, window.visualViewport.width)")
    assert box is not None and box["width"] > 0, selector
    assert 0 <= box["x"] and box["x"] + box["width"] <= width + 0.5, f"{selector} is cut off: {box}, window {width}"


def protect_long(execution: Execution, *, stop: str, levels: tuple[str, str, str], trail: str) -> None:
    """A long's stop, 3-level ladder and trailing stop, placed 10 minutes ago; then level 1 filled and
    the stop moved to breakeven (a new stop placed, the first cancelled)."""
    ago = timedelta(minutes=10)
    make_protective(execution, "stop_loss", stop, status="cancelled", ago=ago)
    for level, price in enumerate(levels, 1):
        make_protective(execution, "take_profit", price, level=level, quantity="0.037", ago=ago,
                        status="triggered" if level == 1 else "active")
    make_protective(execution, "trailing", trail, quantity="0.111", callback="1.00", ago=ago)
    make_protective(execution, "stop_loss", "45010", level=1, ago=timedelta(minutes=1))


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_execution_page_lists_its_protective_orders_in_order(browser, live_server, trader, device):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    execution = make_execution(1)
    protect_long(execution, stop="43200", levels=("46000", "47000", "48000"), trail="47500")
    phone = device == "phone"
    visit = Visit(browser, live_server.url, PHONE if phone else DESKTOP, phone=phone)
    visit.log_in()
    visit.page.goto(f"{live_server.url}/ui/executions/{execution.pk}/")
    section = visit.page.locator("section[aria-labelledby=protective-orders]")
    section.scroll_into_view_if_needed()
    assert section.is_visible()
    rows = section.locator("tbody tr[data-protective]")
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.protective)") == [
        "stop_loss", "stop_loss-1", "take_profit-1", "take_profit-2", "take_profit-3", "trailing"]
    labels = rows.evaluate_all("rows => rows.map(row => row.cells[0].innerText.split('\\n')[0].trim())")
    assert labels == ["Stop-loss sell", "Stop-loss moved to breakeven after take-profit 1 filled sell",
                      "Take-profit 1 of 3 sell", "Take-profit 2 of 3 sell", "Take-profit 3 of 3 sell", "Trailing stop sell"]
    assert "replaced by the stop below" in rows.nth(0).inner_text()
    assert [rows.nth(n).locator(".badge").inner_text() for n in range(6)] == [
        "Cancelled", "Active", "Triggered", "Active", "Active", "Active"]
    assert rows.nth(5).locator("td.num").first.inner_text() == "activation 47,500, callback 1.0 %"
    for n in range(6):  # every badge and label readable: visible, and not cut off by the window
        assert rows.nth(n).locator(".badge").is_visible()
        in_view(visit, f"section[aria-labelledby=protective-orders] tbody tr[data-protective] >> nth={n} >> .badge")
        in_view(visit, f"section[aria-labelledby=protective-orders] tbody tr[data-protective] >> nth={n} >> td >> nth=0")
    section.screenshot(path=SCREENSHOTS / f"execution-protection-section-{device}.png")
    visit.page.screenshot(path=SCREENSHOTS / f"execution-protection-{device}.png", full_page=True)
    if phone:
        fits_the_phone(visit, "the execution page with protective orders")
        assert section.locator("th.opt").first.is_hidden()  # placed/updated: left out on a phone
    visit.close()


def test_the_protective_orders_table_fits_a_phone_without_scrolling_sideways(browser, live_server, trader):
    execution = make_execution(1)
    protect_long(execution, stop="43200", levels=("46000", "47000", "48000"), trail="47500")
    visit = Visit(browser, live_server.url, PHONE, phone=True)
    visit.log_in()
    visit.page.goto(f"{live_server.url}/ui/executions/{execution.pk}/")
    wrap = visit.page.locator("section[aria-labelledby=protective-orders] .table-wrap")
    try:
        widths = wrap.evaluate("wrap => [wrap.scrollWidth, wrap.clientWidth]")
        # The cut falls between two columns: nothing on the screen says a Status column is there at all.
        assert widths[0] <= widths[1], f"the protective orders table scrolls sideways on a phone: {widths}"
    finally:
        visit.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_dashboard_shows_each_open_positions_protective_orders(browser, live_server, trader, device):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    make_account()  # an ETHUSDT short
    Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.111"), entry_price=Decimal("45000.5"),
                            mark_price=Decimal("45210"), unrealized_pnl=Decimal("23.2"), leverage=5, margin_type="cross")
    protect_long(make_execution(1), stop="43200", levels=("46000", "47000", "48000"), trail="47500")
    short = make_execution(2, symbol="ETHUSDT")
    make_protective(short, "stop_loss", "2600", side="BUY")
    make_protective(short, "take_profit", "2400", level=1, quantity="0.75", side="BUY")
    make_protective(short, "take_profit", "2300", level=2, quantity="0.75", side="BUY", status="placing")
    phone = device == "phone"
    visit = Visit(browser, live_server.url, PHONE if phone else DESKTOP, phone=phone)
    visit.log_in()
    table = visit.page.locator(".slot-positions table")
    assert table.locator("thead th").last.inner_text() == "Protection"
    cells = {symbol: table.locator(f"tbody tr:has(td:first-child:has-text('{symbol}')) td:last-child")
             for symbol in ("BTCUSDT", "ETHUSDT")}
    assert " ".join(cells["BTCUSDT"].inner_text().split()) == (
        "SL 45,010 breakeven · TP2 47,000 ×0.037 · TP3 48,000 ×0.037 · Trail 1.0 % from 47,500")
    assert " ".join(cells["ETHUSDT"].inner_text().split()) == "SL 2,600 · TP1 2,400 ×0.75 · TP2 2,300 ×0.75 placing"
    for symbol, cell in cells.items():  # each part readable: visible and whole in the window once scrolled to
        parts = cell.locator("span.nowrap")
        assert parts.count() == (4 if symbol == "BTCUSDT" else 3)
        for n in range(parts.count()):
            assert parts.nth(n).is_visible()
            in_view(visit, f".slot-positions tbody tr:has(td:first-child:has-text('{symbol}')) td:last-child "
                           f"span.nowrap >> nth={n}")
        in_view(visit, f".slot-positions tbody tr:has(td:first-child:has-text('{symbol}')) td:first-child")
    visit.page.locator(".slot-positions").screenshot(path=SCREENSHOTS / f"dashboard-protection-positions-{device}.png")
    visit.page.screenshot(path=SCREENSHOTS / f"dashboard-protection-{device}.png", full_page=True)
    if phone:
        fits_the_phone(visit, "the dashboard with protective orders")
    visit.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_it_sets_a_limit_entry_and_a_take_profit_ladder_on_the_strategy_page(browser, live_server, staff, strategy, device):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone = device == "phone"
    visit = Visit(browser, live_server.url, PHONE if phone else DESKTOP, phone=phone)
    visit.log_in("staff")
    visit.page.goto(f"{live_server.url}/ui/strategies/{strategy.pk}/")
    entries = visit.page.locator("fieldset:has(legend:text-is('Entries'))")
    assert entries.is_visible()
    assert visit.page.input_value("#id_entry") == "market"
    visit.page.select_option("#id_entry", "post_only")
    visit.page.fill("#id_entry_offset_pct", "0.5")
    visit.page.fill("#id_entry_timeout", "30")
    visit.page.select_option("#id_on_timeout", "market")
    for n, (pct, share) in enumerate([("1", "30"), ("2", "30"), ("3.5", "40")]):
        visit.page.fill(f"#id_take_profit_ladder_{2 * n}", pct)
        visit.page.fill(f"#id_take_profit_ladder_{2 * n + 1}", share)
    entries.screenshot(path=SCREENSHOTS / f"strategy-entries-{device}.png")
    visit.page.locator(".field:has(#id_take_profit_ladder)").screenshot(path=SCREENSHOTS / f"strategy-ladder-{device}.png")
    visit.page.screenshot(path=SCREENSHOTS / f"strategy-entries-ladder-{device}.png", full_page=True)
    if phone:
        in_view(visit, "#id_take_profit_ladder_5")  # the last level's share, whole on the screen
        fits_the_phone(visit, "the strategy page with a ladder")
    visit.page.click("button[type=submit]:has-text('Save')")
    visit.page.wait_for_selector("text=Saved ALSAPRO 1.")

    strategy.refresh_from_db()
    assert (strategy.entry, strategy.entry_offset_pct, strategy.entry_timeout, strategy.on_timeout) == (
        "post_only", Decimal("0.5"), 30, "market")
    assert strategy.take_profit_ladder == [{"pct": "1", "share": "30"}, {"pct": "2", "share": "30"},
                                           {"pct": "3.5", "share": "40"}]
    # The page shows what was saved.
    assert visit.page.input_value("#id_entry") == "post_only" and visit.page.input_value("#id_on_timeout") == "market"
    assert Decimal(visit.page.input_value("#id_entry_offset_pct")) == Decimal("0.5")
    assert visit.page.input_value("#id_entry_timeout") == "30"
    assert [visit.page.input_value(f"#id_take_profit_ladder_{n}") for n in range(6)] == ["1", "30", "2", "30", "3.5", "40"]
    assert visit.page.input_value("#id_take_profit_ladder_6") == ""
    visit.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_finished_replay_shows_its_columns_and_one_equity_chart(browser, live_server, trader, binance_settings,
                                                                   binance_fake, device):
    from analytics.models import ReplayRun
    from tests.analytics.test_replay_runs import flat_bars_with_a_dip, recorded_alerts

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    StrategyPreference.objects.create(name="ALSA", sizing="signal", stop_loss=Decimal("3"))
    flat_bars_with_a_dip(binance_fake)
    recorded_alerts()
    phone = device == "phone"
    visit = Visit(browser, live_server.url, PHONE if phone else DESKTOP, phone=phone)
    visit.log_in()
    try:
        visit.page.goto(f"{live_server.url}/ui/replay/")
        visit.page.fill("input[name=start]", "2026-11-01T00:00")
        visit.page.fill("input[name=end]", "2026-11-01T02:00")
        visit.page.fill("input[name=slippage_bps]", "0")
        visit.page.fill("input[name=stop_loss]", "2")
        visit.page.click("form.replay-form button[type=submit]")
        run = ReplayRun.objects.get()
        run_queued_jobs()  # the worker's part, as a qcluster would
        visit.page.wait_for_selector("#replay-equity-chart canvas", timeout=10000)  # the poll reloads the page once done
        text = visit.page.inner_text("main")
        for column in ("Reality", "Replay, recorded settings", "Replay, new settings"):
            assert column in text
        assert visit.page.locator("[data-chart]").count() == 1
        if phone:
            fits_the_phone(visit, f"the replay run {run.pk}")
        visit.page.screenshot(path=SCREENSHOTS / f"replay-{device}.png", full_page=True)
    finally:
        visit.close()
