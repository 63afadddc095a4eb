"""The kill switch on the dashboard and in the admin (issue #10): the same halt as POST /halt —
opening refused, closing allowed, flatten closes all — for users who may change it."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from notifications.models import Notification
from tests.support.queue import queued_jobs
from trading.models import Position, Signal, TradingHalt

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client, trader):
    trader.user_permissions.add(Permission.objects.get(codename="change_tradinghalt"))
    client.force_login(trader)
    return client


def test_a_trader_without_the_permission_sees_the_state_but_no_buttons(trader_client):
    page = trader_client.get("/ui/").content.decode()
    assert "Kill switch" in page and "Trading is on." in page and "Halt trading" not in page
    answer = trader_client.post("/ui/halt/", {"halted": "true", "reason": "x"})
    assert answer.status_code == 403 and not TradingHalt.current().halted


def test_halting_from_the_dashboard_refuses_opens_and_says_so_live(operator_client, trader):
    answer = operator_client.post("/ui/halt/", {"halted": "true", "reason": "exchange incident"}, follow=True)
    assert answer.redirect_chain[-1][0] == "/ui/"
    page = answer.content.decode()
    assert "Trading halted: opening orders are refused." in page and "Resume trading" in page
    halt = TradingHalt.current()
    assert halt.halted and halt.reason == "exchange incident" and halt.changed_by == trader.username
    fragment = operator_client.get("/ui/", headers={"HX-Request": "true"}).content.decode()
    assert "Trading is halted." in fragment and "exchange incident" in fragment  # the polled banner
    assert Notification.objects.filter(event_type="halt").count() == 0  # no channel configured: none queued
    operator_client.post("/ui/halt/", {"halted": "false"})
    assert not TradingHalt.current().halted


def test_flatten_from_the_dashboard_queues_a_close_of_every_open_position(operator_client,
                                                                          django_capture_on_commit_callbacks):
    Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.1"), entry_price=Decimal(45000))
    Position.objects.create(symbol="ETHUSDT", amount=Decimal("-2"), entry_price=Decimal(3000))
    with django_capture_on_commit_callbacks(execute=True):  # the Redis broker queues on commit
        page = operator_client.post("/ui/halt/", {"halted": "true", "flatten": "on"}, follow=True).content.decode()
    assert "Closing 2 open position(s) now." in page
    closes = Signal.objects.filter(origin=Signal.Origin.OPERATOR, action="close")
    assert sorted(closes.values_list("symbol", flat=True)) == ["BTCUSDT", "ETHUSDT"]
    assert len(queued_jobs()) == 2


def test_a_form_without_the_button_changes_nothing(operator_client):
    """An unticked checkbox must never read as "resume": `halted` comes only from the button."""
    TradingHalt.objects.create(pk=1, halted=True, reason="incident")
    answer = operator_client.post("/ui/halt/", {"reason": "forgot the button"})
    assert answer.status_code == 400 and "halted" in answer.content.decode()
    assert TradingHalt.current().halted


def test_the_admin_halts_and_flattens_too(admin_client, admin_user):
    Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.1"), entry_price=Decimal(45000))
    answer = admin_client.get("/admin/trading/tradinghalt/", follow=True)
    assert answer.redirect_chain[-1][0] == "/admin/trading/tradinghalt/1/change/"
    answer = admin_client.post("/admin/trading/tradinghalt/1/change/",
                               {"halted": "true", "reason": "from the admin", "flatten": "on"}, follow=True)
    assert answer.status_code == 200 and "Closing 1 open position(s) now." in answer.content.decode()
    halt = TradingHalt.current()
    assert halt.halted and halt.reason == "from the admin" and halt.changed_by == admin_user.username
    assert Signal.objects.filter(origin=Signal.Origin.OPERATOR, symbol="BTCUSDT").exists()
