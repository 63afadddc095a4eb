"""POST /webhook through the URL: what is stored, what is queued, and every way in refused."""

import hashlib
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from notifications.models import Channel, Notification
from preferences.intake import STRATEGIES
from preferences.models import StrategyPreference
from tests.support.queue import clear_queue, queued_jobs
from trading.models import Signal
from trading.webhook import RATE_LIMITER

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tradingview"
PASSPHRASE = "test-passphrase-0123456789"
ON_REDIS = isinstance(caches["default"], RedisCache)


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    RATE_LIMITER.reset()
    yield
    RATE_LIMITER.reset()


@pytest.fixture
def client(committed_client):
    return committed_client


@pytest.fixture
def strategy(db) -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"])


def now_iso(delta: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def fixture(name: str, **changes) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    data["time"] = now_iso()
    data.update(changes)
    return {key: value for key, value in data.items() if value is not ...}


def post(client, data, *, content_type="application/json", **headers):
    body = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return client.post("/webhook", body, content_type=content_type, **headers)


def assert_refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == "rejected" and words in body["error"], body
    assert queued_jobs() == []


def test_it_queues_the_seed_example(client, strategy):
    response = post(client, fixture("seed_example.json"))
    assert response.status_code == 202
    signal = Signal.objects.get()
    assert response.json() == {"status": "queued", "signal_id": signal.pk}
    assert (signal.action, signal.symbol, signal.strategy, signal.status) == ("buy", "BTCUSDT", "ALSAPRO 1", "queued")
    assert signal.quantity == Decimal("0.001") and signal.price == Decimal("45000")
    assert signal.preference == strategy and signal.http_status == 202 and signal.source_ip == "127.0.0.1"
    assert signal.idempotency_key.startswith("sha256:") and signal.queued_at and signal.intake_us > 0
    assert "passphrase" not in signal.payload and signal.payload["quantity"] == "0.001"
    [job] = queued_jobs()
    assert (job["func"], job["args"]) == ("trading.tasks.execute_signal", (signal.pk, "BTCUSDT"))


def test_it_queues_a_strategy_alert_with_string_numbers_and_a_perpetual_ticker(client, strategy):
    assert post(client, fixture("strategy_alert.json")).status_code == 202
    signal = Signal.objects.get()
    assert (signal.symbol, signal.action, signal.quantity, signal.price) == (
        "BTCUSDT", "sell", Decimal("0.015"), Decimal("43250.5")
    )
    assert (signal.market_position, signal.prev_market_position, signal.position_size) == ("short", "long", Decimal("-0.015"))
    assert signal.idempotency_key == "id:ALSAPRO 1:Short entry-2024-01-01T12:00:00Z"
    assert signal.payload["interval"] == "15" and signal.comment == "Short entry"


def test_it_accepts_text_plain_bodies(client, strategy):
    text = (FIXTURES / "text_plain.txt").read_text().replace("2024-01-01T12:00:00Z", now_iso())
    response = post(client, text, content_type="text/plain; charset=utf-8")
    assert response.status_code == 202
    signal = Signal.objects.get()
    assert (signal.symbol, signal.action, signal.quantity) == ("BTCUSDT", "buy", Decimal("0.001"))


@pytest.mark.parametrize("ticker", ["BTCUSDT", "btcusdt", "BTCUSDT.P", "BINANCE:BTCUSDT.P", "BTCUSDTPERP"])
def test_it_accepts_every_ticker_form(client, strategy, ticker):
    assert post(client, fixture("seed_example.json", symbol=ticker)).status_code == 202
    assert Signal.objects.get().symbol == "BTCUSDT"
    assert len(queued_jobs()) == 1


def test_it_answers_a_resend_as_a_duplicate_and_does_nothing_else(client, strategy):
    data = fixture("seed_example.json")
    first = post(client, data).json()["signal_id"]
    again = post(client, data)
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "signal_id": first}
    signal = Signal.objects.get()
    assert signal.duplicate_count == 1 and signal.last_duplicate_at is not None
    assert len(queued_jobs()) == 1


def test_it_keys_on_the_senders_id(client, strategy):
    post(client, fixture("seed_example.json", id="order-7"))
    resent = post(client, fixture("seed_example.json", id="order-7", time=now_iso(1)))
    assert resent.json()["status"] == "duplicate"


@pytest.mark.parametrize("passphrase", ["wrong", "", None, 12345])
def test_it_refuses_a_wrong_or_missing_passphrase_and_stores_no_body(client, strategy, passphrase):
    data = fixture("seed_example.json", passphrase=passphrase if passphrase is not None else ...)
    response = post(client, data)
    assert_refused(response, 401, "passphrase")
    signal = Signal.objects.get()
    assert (signal.status, signal.http_status, signal.payload, signal.action) == ("rejected", 401, {}, "")
    assert signal.strategy == "ALSAPRO 1" and signal.source_ip == "127.0.0.1"


def test_it_refuses_everything_when_no_passphrase_is_configured(client, strategy, settings):
    settings.WEBHOOK_PASSPHRASE = ""
    assert_refused(post(client, fixture("seed_example.json", passphrase="")), 401, "no webhook passphrase is configured")


def test_it_accepts_only_a_strategys_own_passphrase_when_it_has_one(client, strategy):
    strategy.set_passphrase("own-secret-phrase")
    strategy.save()
    assert_refused(post(client, fixture("seed_example.json")), 401, "wrong or missing passphrase")
    assert post(client, fixture("seed_example.json", passphrase="own-secret-phrase")).status_code == 202


def test_it_refuses_an_address_not_allowed(client, strategy, settings):
    settings.WEBHOOK_ALLOWED_IPS = ["52.89.214.238", "34.212.75.30"]
    assert_refused(post(client, fixture("seed_example.json")), 403, "127.0.0.1 is not allowed")
    assert Signal.objects.get().payload == {}


def test_it_ignores_x_forwarded_for_from_an_untrusted_peer(client, strategy, settings):
    settings.WEBHOOK_ALLOWED_IPS = ["52.89.214.238"]
    response = post(client, fixture("seed_example.json"), HTTP_X_FORWARDED_FOR="52.89.214.238")
    assert_refused(response, 403, "127.0.0.1")


def test_it_believes_x_forwarded_for_from_a_trusted_proxy(client, strategy, settings):
    settings.WEBHOOK_ALLOWED_IPS = ["52.89.214.238"]
    settings.WEBHOOK_TRUSTED_PROXIES = ["127.0.0.0/8"]
    # A client can prepend anything; only the hop the proxy itself saw counts.
    response = post(client, fixture("seed_example.json"), HTTP_X_FORWARDED_FOR="1.2.3.4, 52.89.214.238")
    assert response.status_code == 202
    assert Signal.objects.get().source_ip == "52.89.214.238"
    spoofed = post(client, fixture("seed_example.json", id="x"), HTTP_X_FORWARDED_FOR="52.89.214.238, 6.6.6.6")
    assert spoofed.status_code == 403 and "6.6.6.6" in spoofed.json()["error"]
    assert len(queued_jobs()) == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{not json", "not valid JSON"), ("[1, 2]", "JSON object, not an array"), ("", "empty"),
        ('{"price": NaN}', "not valid JSON"),
    ],
)
def test_it_refuses_malformed_bodies(client, strategy, body, words):
    assert_refused(post(client, body), 400, words)
    assert Signal.objects.get().payload == {}


def test_it_names_each_field_with_a_wrong_type(client, strategy):
    response = post(client, fixture("seed_example.json", action=True, quantity="-1", price=[1], symbol=...))
    assert_refused(response, 400, "bad or missing fields")
    assert set(response.json()["fields"]) == {"action", "quantity", "price", "symbol"}
    signal = Signal.objects.get()
    assert signal.status == "rejected" and "quantity: must be a positive number" in signal.reason
    assert "passphrase" not in signal.payload and signal.payload["strategy"] == "ALSAPRO 1"


def test_it_keeps_apart_sender_ids_that_differ_only_past_the_keys_128th_character(client, db):
    # The longest strategy and id the intake accepts: "id:<strategy>:<id>" is 204 characters.
    StrategyPreference.objects.create(name="S" * 100, products=["BTCUSDT"])
    alerts = [fixture("seed_example.json", strategy="S" * 100, id="x" * 99 + last) for last in "ab"]
    answers = [post(client, alert) for alert in alerts]
    assert [answer.status_code for answer in answers] == [202, 202]
    assert Signal.objects.count() == 2 and len(queued_jobs()) == 2
    column = Signal._meta.get_field("idempotency_key").max_length
    assert all(len(key) <= column for key in Signal.objects.values_list("idempotency_key", flat=True))
    for alert, answer in zip(alerts, answers, strict=True):
        assert post(client, alert).json() == {"status": "duplicate", "signal_id": answer.json()["signal_id"]}
    assert len(queued_jobs()) == 2


@pytest.mark.parametrize(
    "body",
    [
        # json.dumps writes a lone surrogate as the six characters \ud800, which json.loads accepts.
        json.dumps(fixture("seed_example.json", strategy="\ud800")),
        json.dumps(fixture("seed_example.json", passphrase=PASSPHRASE + "\udfff")),
        json.dumps(fixture("seed_example.json", comment="TP \ud800")),
        json.dumps(fixture("seed_example.json", symbol="BTCUSDT\udc00")),
        json.dumps(fixture("seed_example.json", **{"extra\ud800": "x"})),
        json.dumps(fixture("seed_example.json", extra=["ok", {"deeper": "\udbff"}])),
        json.dumps(fixture("seed_example.json", strategy="ALSAPRO 1\xff"), ensure_ascii=False).encode("latin-1"),
    ],
    ids=["strategy", "passphrase", "comment", "symbol", "extra key", "extra value", "not utf-8"],
)
def test_it_refuses_a_body_that_is_not_valid_unicode_and_stores_none_of_it(client, strategy, body):
    assert_refused(post(client, body), 400, "the body is not valid Unicode text")
    signal = Signal.objects.get()
    assert (signal.status, signal.http_status, signal.payload, signal.strategy, signal.idempotency_key) == (
        "rejected", 400, {}, "", None)
    stored = json.dumps(Signal.objects.values().get(), default=str, ensure_ascii=False)
    assert stored.encode("utf-8") and PASSPHRASE not in stored and "not valid Unicode text" in signal.reason


def test_it_accepts_an_escaped_surrogate_pair_which_is_one_valid_character(client, strategy):
    assert post(client, fixture("seed_example.json", comment="TP \N{GRINNING FACE}")).status_code == 202
    assert Signal.objects.get().comment == "TP \N{GRINNING FACE}"


def test_it_refuses_a_body_over_64_kib(client, strategy):
    data = fixture("seed_example.json", comment="x" * 70_000)
    assert_refused(post(client, data), 413, "over 64 KiB")


def test_it_rejects_a_stale_signal_and_says_how_old(client, strategy):
    response = post(client, fixture("seed_example.json", time=now_iso(-95)))
    assert_refused(response, 400, "stale: sent 9")
    signal = Signal.objects.get()
    assert signal.status == "rejected" and "limit 60 s" in signal.reason and signal.idempotency_key is None


def test_it_honours_a_strategys_own_maximum_age(client, strategy):
    strategy.max_signal_age = 300
    strategy.save()
    assert post(client, fixture("seed_example.json", time=now_iso(-95))).status_code == 202


def test_it_rejects_a_signal_from_the_future(client, strategy):
    assert_refused(post(client, fixture("seed_example.json", time=now_iso(30))), 400, "in the future")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"strategy": "NOPE"}, "strategy 'NOPE' is not configured"),
        ({"symbol": "SOLUSDT.P"}, "SOLUSDT is not among strategy 'ALSAPRO 1''s products (BTCUSDT, ETHUSDT)"),
    ],
)
def test_it_files_signals_its_preferences_do_not_trade(client, strategy, change, reason):
    response = post(client, fixture("seed_example.json", **change))
    assert response.status_code == 200
    assert response.json()["status"] == "filtered" and response.json()["reason"].startswith(reason)
    signal = Signal.objects.get()
    assert signal.status == "filtered" and signal.reason.startswith(reason)
    assert queued_jobs() == []


def test_it_files_signals_of_a_disabled_strategy(client, strategy):
    strategy.enabled = False
    strategy.save()
    data = fixture("seed_example.json")
    response = post(client, data)
    assert response.json()["status"] == "filtered" and "disabled" in response.json()["reason"]
    assert queued_jobs() == []
    assert post(client, data).json()["status"] == "duplicate"  # a resend of a filtered signal


def test_it_stops_a_flood_but_not_a_burst(client, strategy, settings):
    settings.WEBHOOK_RATE_BURST, settings.WEBHOOK_RATE_PER_SECOND = 30, 1
    answers = [post(client, fixture("seed_example.json", id=f"burst-{n}")).status_code for n in range(32)]
    assert answers[:30] == [202] * 30
    assert answers[30:] == [429, 429]
    flood = post(client, fixture("seed_example.json", id="one-more"))
    assert flood.status_code == 429 and int(flood["Retry-After"]) >= 1
    assert Signal.objects.count() == 30 and len(queued_jobs()) == 30


def test_it_never_stores_or_logs_the_passphrase(client, strategy, caplog):
    caplog.set_level("INFO")
    post(client, fixture("seed_example.json"))
    post(client, fixture("seed_example.json", passphrase="wrong-guess-123"))
    post(client, fixture("seed_example.json", quantity="x"))
    stored = json.dumps(list(Signal.objects.values("payload", "reason")), default=str)
    for secret in (PASSPHRASE, "wrong-guess-123"):
        assert secret not in stored and secret not in caplog.text


def test_it_answers_get_with_405(client, db):
    assert client.get("/webhook").status_code == 405


# Some text holds lone surrogates: json.dumps escapes each as \udXXX, and json.loads takes them back.
# A list of characters, not st.text(alphabet), which drops the surrogates from a mixed alphabet.
TEXT = st.text(max_size=20) | st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=20).map("".join)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries({}, optional={
    "action": JSONISH | st.sampled_from(["buy", "SELL", "exit", "close_long"]),
    "symbol": JSONISH | st.sampled_from(["BTCUSDT.P", "BINANCE:ETHUSDT", "x" * 40]),
    "quantity": JSONISH | st.sampled_from(["1e-3", "NaN", "-1", "1e999999", ""]),
    "price": JSONISH, "strategy": JSONISH | st.just("ALSAPRO 1"),
    "time": JSONISH | st.sampled_from(["2025-01-15T14:30:05Z", "1736951405000", "9" * 15]),
    "passphrase": st.just(PASSPHRASE) | JSONISH, "id": JSONISH, "market_position": JSONISH, "comment": JSONISH,
})
# Unknown fields too, under the known ones so those still appear as drawn.
BODIES = st.tuples(st.dictionaries(TEXT, JSONISH, max_size=3), FIELDS).map(lambda pair: {**pair[0], **pair[1]})


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(st.binary(max_size=300), BODIES.map(lambda d: json.dumps(d).encode())),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "", "multipart/form-data"]
    ),
    forwarded=st.one_of(st.none(), st.text(max_size=40)),
)
def test_it_never_answers_5xx_whatever_arrives(body, content_type, forwarded):
    RATE_LIMITER.reset()
    StrategyPreference.objects.get_or_create(name="ALSAPRO 1", defaults={"products": ["BTCUSDT"]})
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    response = Client().post("/webhook", body, content_type=content_type, **headers)
    assert response.status_code < 500, response.content
    clear_queue()


@pytest.mark.django_db(transaction=True)
def test_it_stores_one_signal_when_many_copies_arrive_at_once(strategy):
    data = json.dumps(fixture("seed_example.json"))
    copies = 20
    barrier = threading.Barrier(copies)
    answers: list[int] = []

    def send() -> None:
        client = Client()
        barrier.wait()
        answers.append(client.post("/webhook", data, content_type="application/json").status_code)
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] * (copies - 1) + [202]
    signal = Signal.objects.get()
    assert signal.duplicate_count == copies - 1
    assert [job["args"] for job in queued_jobs()] == [(signal.pk, signal.symbol)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_on_postgresql_the_signal_insert_is_prepared_once_it_repeats(client, strategy):
    """DB_PREPARED_STATEMENTS (on by default): the webhook's INSERT is parsed and planned once per
    connection, not per request."""
    for index in range(6):
        response = post(client, fixture("seed_example.json", id=f"prepared-{index}"))
        assert response.status_code == 202, response.content
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(statement.startswith('INSERT INTO "trading_signal"') for statement in prepared), prepared


# --- blocks after wrong passphrases ----------------------------------------------------------------
@pytest.fixture
def guarded(settings):
    settings.WEBHOOK_AUTH_FAILURES, settings.WEBHOOK_AUTH_WINDOW, settings.WEBHOOK_AUTH_BLOCK = 3, 600, 900
    return settings


def guesses(client, count: int, address: str = "203.0.113.7") -> list[int]:
    return [post(client, fixture("seed_example.json", passphrase=f"guess-{n}"), REMOTE_ADDR=address).status_code
            for n in range(count)]


def test_it_blocks_an_ipv4_source_after_too_many_wrong_passphrases(client, strategy, guarded):
    assert guesses(client, 2) == [401, 401]
    assert post(client, fixture("seed_example.json", id="one-short"), REMOTE_ADDR="203.0.113.7").status_code == 202
    assert guesses(client, 1) == [401]
    response = post(client, fixture("seed_example.json"), REMOTE_ADDR="203.0.113.7")  # the right passphrase
    assert response.status_code == 429 and 899 <= int(response["Retry-After"]) <= 900
    assert response.json()["error"] in {f"too many wrong passphrases from 203.0.113.7; blocked, retry in {left} s"
                                        for left in (899, 900)}
    assert len(queued_jobs()) == 1  # the one accepted before the block
    blocked = Signal.objects.order_by("-id").first()
    assert (blocked.status, blocked.http_status, blocked.payload, blocked.source_ip) == ("rejected", 429, {}, "203.0.113.7")
    assert "too many wrong passphrases" in blocked.reason and blocked.idempotency_key is None
    assert post(client, fixture("seed_example.json"), REMOTE_ADDR="203.0.113.8").status_code == 202  # its neighbour


def test_it_counts_wrong_passphrases_across_an_ipv6_64_and_only_there(client, strategy, guarded):
    assert guesses(client, 2, "2001:db8:aa:bb::1") + guesses(client, 2, "2001:db8:aa:bc::1") == [401] * 4
    assert post(client, fixture("seed_example.json", id="1"), REMOTE_ADDR="2001:db8:aa:bb::2").status_code == 202
    assert guesses(client, 1, "2001:db8:aa:bb:ffff::9") == [401]  # the same /64: its third
    assert post(client, fixture("seed_example.json", id="2"), REMOTE_ADDR="2001:db8:aa:bb::2").status_code == 429
    assert post(client, fixture("seed_example.json", id="3"), REMOTE_ADDR="2001:db8:aa:bc::1").status_code == 202


@pytest.mark.skipif(ON_REDIS, reason="Redis keeps its own time; the local-memory cache reads time.time")
def test_it_lifts_the_block_when_it_ends(client, strategy, guarded, monkeypatch):
    guesses(client, 3)
    start = time.time()
    monkeypatch.setattr(time, "time", lambda: start + 899)
    assert post(client, fixture("seed_example.json"), REMOTE_ADDR="203.0.113.7").status_code == 429
    monkeypatch.setattr(time, "time", lambda: start + 901)
    assert post(client, fixture("seed_example.json"), REMOTE_ADDR="203.0.113.7").status_code == 202


def test_it_notifies_a_block_once(client, strategy, guarded):
    Channel.objects.create(name="ops", kind="email", email_to="ops@example.com")
    guesses(client, 3)
    guesses(client, 5)  # blocked: neither checked nor counted
    [notification] = Notification.objects.all()
    assert notification.event_type == "limit"
    assert notification.text.startswith("Webhook: 3 wrong passphrases from 203.0.113.7 within 600 s.")
    assert "refused (429) for 900 s" in notification.text and PASSPHRASE not in notification.text


def test_it_never_blocks_an_allowed_address_but_notifies(client, strategy, guarded):
    guarded.WEBHOOK_ALLOWED_IPS = ["203.0.113.0/24"]
    Channel.objects.create(name="ops", kind="email", email_to="ops@example.com")
    assert guesses(client, 6) == [401] * 6
    assert post(client, fixture("seed_example.json"), REMOTE_ADDR="203.0.113.7").status_code == 202
    [notification] = Notification.objects.all()
    assert "Not blocked, as WEBHOOK_ALLOWED_IPS names it" in notification.text


def test_it_does_not_count_refusals_while_no_passphrase_is_configured(client, strategy, guarded):
    guarded.WEBHOOK_PASSPHRASE = ""
    assert guesses(client, 4) == [401] * 4
    guarded.WEBHOOK_PASSPHRASE = PASSPHRASE
    assert guesses(client, 2) == [401] * 2
    assert post(client, fixture("seed_example.json", id="1"), REMOTE_ADDR="203.0.113.7").status_code == 202
    assert guesses(client, 1) == [401]
    assert post(client, fixture("seed_example.json", id="2"), REMOTE_ADDR="203.0.113.7").status_code == 429


def test_it_counts_nothing_while_the_failures_setting_is_0(client, strategy, guarded):
    guarded.WEBHOOK_AUTH_FAILURES = 0
    assert guesses(client, 4) == [401] * 4
    assert post(client, fixture("seed_example.json", id="1"), REMOTE_ADDR="203.0.113.7").status_code == 202
    guarded.WEBHOOK_AUTH_FAILURES = 3
    assert guesses(client, 3) == [401] * 3
    assert post(client, fixture("seed_example.json", id="2"), REMOTE_ADDR="203.0.113.7").status_code == 429


# --- the comment is stored without secrets --------------------------------------------------------
def test_it_stores_the_comment_without_the_passphrase(client, strategy):
    response = post(client, fixture("seed_example.json", comment=f"entry; passphrase {PASSPHRASE} ok"))
    assert response.status_code == 202
    signal = Signal.objects.get()
    assert signal.comment == "entry; passphrase ******** ok" and signal.payload["comment"] == signal.comment
    assert PASSPHRASE not in json.dumps(Signal.objects.values().get(), default=str)


def test_it_masks_a_strategys_own_passphrase_in_a_comment_that_is_not_text(client, strategy):
    strategy.set_passphrase("own-secret-phrase")
    strategy.save()
    comment = {"note": "own-secret-phrase", "token": "x"}
    response = post(client, fixture("seed_example.json", passphrase="own-secret-phrase", comment=comment, quantity="-1"))
    assert response.status_code == 400  # stored with its payload all the same: it authenticated
    signal = Signal.objects.get()
    assert signal.payload["comment"] == '{"note": "********"}'
    assert "own-secret-phrase" not in json.dumps(Signal.objects.values().get(), default=str)


# --- strategy passphrases stored before they were keyed -------------------------------------------
def test_it_accepts_and_upgrades_a_legacy_strategy_digest(client, strategy):
    StrategyPreference.objects.filter(pk=strategy.pk).update(
        passphrase_hash=hashlib.sha256(b"own-secret-phrase").hexdigest())
    STRATEGIES.forget()
    assert post(client, fixture("seed_example.json", passphrase="own-secret-phrase")).status_code == 202
    strategy.refresh_from_db()
    assert strategy.passphrase_hash.startswith("hmac-sha256$") and strategy.check_passphrase("own-secret-phrase")
    assert post(client, fixture("seed_example.json", passphrase=PASSPHRASE, id="2")).status_code == 401
