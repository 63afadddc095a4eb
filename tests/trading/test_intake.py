"""trading.intake is pure: TradingView bodies in, a normalised signal or named field errors out."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trading.intake import IntakeError, idempotency_key, normalise_symbol, parse_body, parse_signal, redact

BASE = {"action": "buy", "symbol": "BTCUSDT", "strategy": "S", "time": "2025-01-15T14:30:05Z", "passphrase": "p"}


def parse(**changes):
    data = {**BASE, **changes}
    return parse_signal({key: value for key, value in data.items() if value is not ...})


def fields_of(**changes) -> dict:
    with pytest.raises(IntakeError) as error:
        parse(**changes)
    return error.value.fields


@pytest.mark.parametrize(
    "raw", ["BTCUSDT", "btcusdt", "BTCUSDT.P", "BINANCE:BTCUSDT.P", "BTCUSDTPERP", "binance:btcusdt.p", " BTCUSDT "]
)
def test_it_normalises_every_ticker_form(raw):
    assert normalise_symbol(raw) == "BTCUSDT"
    assert parse(symbol=raw).symbol == "BTCUSDT"


def test_it_takes_the_ticker_when_there_is_no_symbol():
    assert parse(symbol=..., ticker="ETHUSDT.P").symbol == "ETHUSDT"


@pytest.mark.parametrize(
    ("raw", "action"),
    [("buy", "buy"), ("BUY", "buy"), ("long", "buy"), ("sell", "sell"), ("Short", "sell"), ("close", "close"),
     ("exit", "close"), ("FLAT", "close"), ("close_long", "close_long"), ("exit_short", "close_short"),
     ("close_short", "close_short")],
)
def test_it_understands_every_action_synonym(raw, action):
    assert parse(action=raw).action == action


@pytest.mark.parametrize("raw", [Decimal("0.001"), "0.001", "1e-3", " 0.0010 ", Decimal("1E-3")])
def test_it_reads_quantities_as_decimals_from_numbers_and_strings(raw):
    quantity = parse(quantity=raw).quantity
    assert isinstance(quantity, Decimal) and quantity == Decimal("0.001")


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-1", "", "0", True, [], {"a": 1}, "abc", Decimal("-0.5")])
def test_it_refuses_quantities_that_make_no_sense(raw):
    assert "quantity" in fields_of(quantity=raw)


def test_it_refuses_nan_and_infinity_as_bare_json():
    for text in (b'{"quantity": NaN}', b'{"price": Infinity}', b'{"price": -Infinity}'):
        with pytest.raises(IntakeError, match="not valid JSON"):
            parse_body(text)


def test_it_parses_json_numbers_as_decimal_not_float():
    data = parse_body(b'{"price": 45000.1, "quantity": 0.1}')
    assert data["price"] == Decimal("45000.1") and data["quantity"] == Decimal("0.1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-01-15T14:30:05Z", datetime(2025, 1, 15, 14, 30, 5, tzinfo=UTC)),
        ("2025-01-15T16:30:05+02:00", datetime(2025, 1, 15, 14, 30, 5, tzinfo=UTC)),
        ("2025-01-15T14:30:05.250Z", datetime(2025, 1, 15, 14, 30, 5, 250000, tzinfo=UTC)),
        (Decimal("1736951405000"), datetime(2025, 1, 15, 14, 30, 5, tzinfo=UTC)),
        ("1736951405000", datetime(2025, 1, 15, 14, 30, 5, tzinfo=UTC)),
    ],
)
def test_it_reads_iso_times_and_epoch_milliseconds(raw, expected):
    assert parse(time=raw).sender_time == expected


@pytest.mark.parametrize("raw", ["2025-01-15T14:30:05", "yesterday", "", True, Decimal("1.5"), Decimal("1736951405")])
def test_it_refuses_times_without_a_zone_or_in_seconds(raw):
    assert "time" in fields_of(time=raw)


def test_it_names_every_bad_field_at_once():
    fields = fields_of(action="hold", symbol=..., strategy=..., time=..., price="abc", market_position="sideways")
    assert set(fields) == {"action", "symbol", "strategy", "time", "price", "market_position"}
    assert "timenow" in fields["time"]


def test_it_keeps_market_positions_and_optional_fields():
    signal = parse(market_position="Flat", prev_market_position="long", position_size="0", id=123, comment="TP 1")
    assert (signal.market_position, signal.prev_market_position, signal.position_size) == ("flat", "long", Decimal(0))
    assert (signal.sender_id, signal.comment) == ("123", "TP 1")


@pytest.mark.parametrize("body", [b"", b"   ", b"[1, 2]", b'"buy"', b"buy BTCUSDT", b"\xff\xfe", b"{" * 100000])
def test_it_refuses_bodies_that_are_not_a_json_object(body):
    with pytest.raises(IntakeError):
        parse_body(body)


def test_it_keys_a_signal_by_the_senders_id_or_by_its_content():
    assert idempotency_key(parse(id="abc")) == "id:S:abc"
    same = idempotency_key(parse(quantity="0.0010"))
    assert same == idempotency_key(parse(quantity=Decimal("0.001")))
    assert same.startswith("sha256:")
    assert same != idempotency_key(parse(quantity="0.002"))
    assert same != idempotency_key(parse(quantity="0.001", time="2025-01-15T14:30:06Z"))


def test_it_redacts_secrets_and_keeps_unknown_fields():
    stored = redact({"passphrase": "p", "Password": "x", "api_key": "k", "nested": {"secret": "s", "ok": 1},
                     "price": Decimal("45000.10"), "interval": "15", "huge": Decimal("1e999999")})
    assert stored == {"nested": {"ok": 1}, "price": "45000.10", "interval": "15", "huge": "1E+999999"}


@pytest.mark.parametrize("body", [b'{"strategy": "a\\u0000b"}', b'{"a\\U0000": 1}', b'{"x": "\x00"}'])
def test_it_refuses_nul_characters_which_postgresql_cannot_store(body):
    with pytest.raises(IntakeError, match="NUL"):
        parse_body(body)


def test_it_digests_a_senders_key_too_long_for_the_column():
    # The longest strategy and id the intake accepts make a 204-character key; the column holds 128.
    first, second = (parse(strategy="S" * 100, id="x" * 99 + last) for last in "ab")
    keys = {idempotency_key(first), idempotency_key(second)}
    assert len(keys) == 2
    assert all(key.startswith("id-sha256:") and len(key) <= 128 for key in keys)
    assert idempotency_key(first) == idempotency_key(parse(strategy="S" * 100, id="x" * 99 + "a"))


@pytest.mark.parametrize(
    "body",
    [
        b'{"action": "buy", "strategy": "\\ud800"}',
        b'{"passphrase": "p\\uDFFF"}',
        b'{"\\ud800extra": 1}',
        b'{"extra": ["ok", {"deeper": "\\udc00"}]}',
        b'{"strategy": "S\xff"}',
        b'{"strategy": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 bytes, which UTF-8 forbids
    ],
    ids=["strategy", "passphrase", "key", "nested value", "not utf-8", "utf-8 encoded surrogate"],
)
def test_it_refuses_a_body_that_is_not_valid_unicode(body):
    with pytest.raises(IntakeError, match="not valid Unicode text"):
        parse_body(body)


def test_it_accepts_an_escaped_surrogate_pair_which_is_one_valid_character():
    assert parse_body(b'{"comment": "\\ud83d\\ude00"}') == {"comment": "\N{GRINNING FACE}"}
