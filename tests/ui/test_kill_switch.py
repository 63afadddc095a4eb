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


def test_it_keeps_who_when_where_and_why_of_every_change(operator_client, trader, admin_user):
    from rest_framework.test import APIClient

    operator_client.post("/ui/halt/", {"halted": "true", "reason": "exchange incident"}, REMOTE_ADDR="203.0.113.9")
    api = APIClient(REMOTE_ADDR="198.51.100.7")
    api.force_authenticate(admin_user)
    assert api.post("/halt", {"halted": False}, format="json").status_code == 200
    rows = TradingHalt.history.order_by("history_id")
    assert [(row.halted, row.reason, row.changed_by, row.changed_from, row.history_user) for row in rows] == [
        (True, "exchange incident", trader.username, "203.0.113.9", trader),
        (False, "", admin_user.username, "198.51.100.7", admin_user),
    ]
    assert rows[0].changed_at < rows[1].changed_at
    halt = TradingHalt.current()
    assert (halt.halted, halt.changed_by, halt.changed_from) == (False, admin_user.username, "198.51.100.7")


def test_the_admin_shows_the_history_and_records_its_own_changes(admin_client, admin_user):
    admin_client.get("/admin/trading/tradinghalt/")  # makes the one row
    admin_client.post("/admin/trading/tradinghalt/1/change/", {"halted": "true", "reason": "from the admin"},
                      REMOTE_ADDR="192.0.2.44")
    assert TradingHalt.current().changed_from == "192.0.2.44"
    page = admin_client.get("/admin/trading/tradinghalt/1/history/").content.decode()
    assert "from the admin" in page and "192.0.2.44" in page and admin_user.username in page
    assert admin_client.get("/admin/trading/tradinghalt/1/change/").content.decode().count("/history/") >= 1


def test_the_dashboard_shows_the_last_change(operator_client, trader):
    assert "Last change" not in operator_client.get("/ui/").content.decode()  # never changed: nothing to show
    operator_client.post("/ui/halt/", {"halted": "true", "reason": "exchange incident"})
    page = operator_client.get("/ui/").content.decode()
    assert f"Last change: halted by {trader.username}, " in page and "why: exchange incident." in page
    operator_client.post("/ui/halt/", {"halted": "false"})
    assert f"Last change: resumed by {trader.username}, " in operator_client.get("/ui/").content.decode()


def test_it_logs_each_change_in_one_line(operator_client, trader, caplog):
    caplog.set_level("INFO", logger="trading.halt")
    operator_client.post("/ui/halt/", {"halted": "true", "reason": "exchange incident"}, REMOTE_ADDR="203.0.113.9")
    operator_client.post("/ui/halt/", {"halted": "false"}, REMOTE_ADDR="203.0.113.9")
    assert [(record.levelname, record.getMessage()) for record in caplog.records if record.name == "trading.halt"] == [
        ("WARNING", f"kill switch halted by {trader.username} from 203.0.113.9: exchange incident"),
        ("INFO", f"kill switch resumed by {trader.username} from 203.0.113.9"),
    ]


def test_it_keeps_a_reason_with_line_breaks_to_one_log_line(operator_client, trader, caplog):
    caplog.set_level("INFO", logger="trading.halt")
    operator_client.post("/ui/halt/", {"halted": "true", "reason": "incident\n2026-01-01 INFO kill switch resumed by x"})
    [record] = [record for record in caplog.records if record.name == "trading.halt"]
    assert "\n" not in record.getMessage() and record.getMessage().endswith("incident 2026-01-01 INFO kill switch resumed by x")


def test_it_answers_a_bad_form_in_plain_text_never_as_markup(operator_client):
    answer = operator_client.post("/ui/halt/", {"halted": "<script>alert(1)</script>", "reason": "x"})
    assert answer.status_code == 400
    assert answer["Content-Type"] == "text/plain; charset=utf-8"
    assert "<script>alert(1)</script>" in answer.content.decode()  # as text, which a browser shows and never runs
    assert not TradingHalt.current().halted


@pytest.mark.django_db(transaction=True)
def test_two_operators_at_once_are_applied_one_after_the_other(monkeypatch, django_user_model):
    """The second operator's change waits for the first's to commit, then reads it: it sees trading
    already halted, so one halt is announced, not two (no read-modify-write from a stale read)."""
    import threading

    from django.db import connection

    from trading import halt as halt_module

    announced: list[str] = []
    monkeypatch.setattr(halt_module, "notify", lambda kind, text: announced.append(text))
    first_read, second_done = threading.Event(), threading.Event()
    save = TradingHalt.save

    def save_slowly(self, *args, **kwargs):
        if threading.current_thread().name == "first":
            first_read.set()
            second_done.wait(timeout=2)  # the second must not get past its read while the first holds the row
        return save(self, *args, **kwargs)

    monkeypatch.setattr(TradingHalt, "save", save_slowly)

    def operator(name: str) -> None:
        try:
            halt_module.halt_set(halted=True, reason=f"by {name}", by=name)
        finally:
            if name == "second":
                second_done.set()
            connection.close()

    first = threading.Thread(target=operator, args=("first",), name="first")
    first.start()
    assert first_read.wait(timeout=10)
    second = threading.Thread(target=operator, args=("second",), name="second")
    second.start()
    first.join(timeout=30)
    second.join(timeout=30)
    assert announced == ["Trading halted by first: opening orders are refused (by first)"]
    assert list(TradingHalt.history.order_by("history_id").values_list("changed_by", "reason")) == [
        ("first", "by first"), ("second", "by second"),
    ]
