"""TradingView alert bodies → a normalised signal. Pure: no database, no HTTP.

TradingView posts whatever text the alert's message holds: JSON when the text is JSON (sent as
text/plain whenever TradingView decides it is not), `{{ticker}}` as `BTCUSDT.P`, numbers as the
placeholders render them, quoted or not. This module accepts every form a real alert produces and
names every field it cannot accept, all at once.
"""

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import NoReturn, TypeVar

from trading.stops import LADDER_MAX, callback_checked

ACTIONS = {
    "buy": "buy", "long": "buy",
    "sell": "sell", "short": "sell",
    "close": "close", "exit": "close", "flat": "close", "close_all": "close",
    "close_long": "close_long", "exit_long": "close_long",
    "close_short": "close_short", "exit_short": "close_short",
}
MARKET_POSITIONS = ("long", "short", "flat")
QUANTITY_TYPES = ("contracts", "usdt", "percent")  # what an alert's quantity means (DESIGN §2, Sizing)
SECRET_KEYS = re.compile(r"pass(word|phrase)?|secret|api_?key|token", re.IGNORECASE)
SYMBOL = re.compile(r"[A-Z0-9]{2,25}")
NUL_ESCAPE = re.compile(r"\\u0000", re.IGNORECASE)
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # \ud800-\udfff, the only way JSON text can hold one
MAX_STRATEGY = 100
MAX_ID = 100
MAX_COMMENT = 255
MAX_KEY = 128  # Signal.idempotency_key's max_length (this module does not import models)
Read = TypeVar("Read")


class IntakeError(Exception):
    """The body cannot become a signal. `fields` maps each bad field to what is wrong with it."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


@dataclass(frozen=True)
class ParsedSignal:
    action: str
    symbol: str
    strategy: str
    sender_time: datetime
    passphrase: str = field(repr=False)
    quantity: Decimal | None = None
    price: Decimal | None = None
    position_size: Decimal | None = None
    market_position: str = ""
    prev_market_position: str = ""
    stop_loss: Decimal | None = None  # the alert's `sl` price: wins over the strategy's stop_loss percent
    take_profit: Decimal | None = None  # the alert's `tp` price (a list of them, a ladder: alert_tp_ladder)
    trail: Decimal | None = None  # the alert's `trail` callback %: wins over the strategy's trailing stop
    quantity_type: str = ""  # contracts (also ""), usdt or percent
    order_type: str = ""  # the alert's entry order type (alert_order_type): wins over the strategy's `entry`
    limit_price: Decimal | None = None  # the alert's limit price for a limit or post-only entry
    sender_id: str = ""
    comment: str = ""


def parse_body(body: bytes) -> dict:
    """JSON whatever the Content-Type says; numbers as Decimal; NaN and Infinity refused."""
    text = _unicode_text(body)
    if not text.strip():
        raise IntakeError("the body is empty: the alert message must be a JSON object")
    if "\x00" in text or NUL_ESCAPE.search(text):
        raise IntakeError("the body contains a NUL character (\\u0000), which no alert needs")
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_refuse_constant)
    except ValueError as error:
        raise IntakeError(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise IntakeError("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise IntakeError(f"the body must be a JSON object, not {_json_type(data)}")
    if SURROGATE_ESCAPE.search(text):  # text decoded from UTF-8 holds none: only an escape makes one
        _refuse_lone_surrogates(data)
    return data


def _unicode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        byte = error.object[error.start]
        raise IntakeError(f"the body is not valid Unicode text: byte 0x{byte:02x} at offset {error.start} is not UTF-8") from None


def _refuse_lone_surrogates(data: dict) -> None:
    """json.loads turns an escape like \\ud800 with no partner into a lone surrogate, which UTF-8
    cannot encode: the passphrase check, the database and the log would each fail on it later."""
    for key, value in data.items():
        in_key, in_value = _lone_surrogate(key), _lone_surrogate(value)
        if in_key or in_value:
            # Names where, never quotes the text: it may be the passphrase.
            where = "a field name" if in_key else f"field {key[:40]!r}"
            raise IntakeError(f"the body is not valid Unicode text: {where} holds an unpaired UTF-16 surrogate "
                              f"({in_key or in_value}); send the character itself or a complete surrogate pair")


def _lone_surrogate(value: object) -> str:
    """The first lone surrogate in a JSON value, as its escape; "" if none. A loop, not recursion:
    json.loads accepts nesting about as deep as the interpreter's recursion limit."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and (found := LONE_SURROGATE.search(item)):
            return f"\\u{ord(found.group()):04x}"
        if isinstance(item, dict):
            pending.extend([*item.keys(), *item.values()])
        elif isinstance(item, list):
            pending.extend(item)
    return ""


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number")


def parse_signal(data: dict) -> ParsedSignal:
    """Every field checked; an IntakeError names each bad one."""
    errors: dict[str, str] = {}

    def take(name: str, reader: Callable[..., Read], *args: object) -> Read | None:
        try:
            return reader(data.get(name), *args)
        except ValueError as error:
            errors[name] = str(error)
            return None

    action = take("action", _action)
    symbol_field = "symbol" if "symbol" in data or "ticker" not in data else "ticker"
    symbol = take(symbol_field, _symbol)
    strategy = take("strategy", _text, MAX_STRATEGY, True)
    sender_time = take("time", _time)
    quantity = take("quantity", _amount, "positive")
    quantity_type = take("quantity_type", _quantity_type)
    price = take("price", _amount, "positive")
    # {{strategy.position_size}} is signed: negative while short.
    position_size = take("position_size", _amount, "signed")
    market_position = take("market_position", _market_position)
    prev_market_position = take("prev_market_position", _market_position)
    stop_loss = take("sl", _amount, "positive")
    take_profit = take("tp", _take_profit)
    trail = take("trail", alert_trail)
    order_type = take("order_type", alert_order_type)
    limit_price = take("limit_price", alert_limit_price)
    sender_id = take("id", _text, MAX_ID, False)
    comment = _comment(data.get("comment"))
    # A required reader returns a value or records an error, so the None tests never decide: they tell
    # the type checker what `errors` being empty already guarantees.
    if errors or action is None or symbol is None or strategy is None or sender_time is None:
        raise IntakeError("the alert has bad or missing fields: " + ", ".join(sorted(errors)), errors)
    return ParsedSignal(
        action=action, symbol=symbol, strategy=strategy, sender_time=sender_time,
        passphrase=passphrase_of(data), quantity=quantity, price=price, position_size=position_size,
        market_position=market_position or "", prev_market_position=prev_market_position or "",
        stop_loss=stop_loss, take_profit=take_profit, sender_id=sender_id or "", comment=comment,
        quantity_type=quantity_type or "", trail=trail, order_type=order_type or "", limit_price=limit_price,
    )


def passphrase_of(data: dict) -> str:
    value = data.get("passphrase")
    return value if isinstance(value, str) else ""


# --- fields ----------------------------------------------------------------------------------------
def _action(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("required: one of buy, sell, long, short, close, exit, flat, close_long, close_short")
    action = ACTIONS.get(value.strip().lower())
    if action is None:
        raise ValueError(
            f"{value[:40]!r} is not an action: use buy, sell, long, short, close, exit, flat, close_long or close_short"
        )
    return action


def normalise_symbol(raw: str) -> str:
    """BINANCE:BTCUSDT.P, btcusdt, BTCUSDTPERP, BTCUSDT.P → BTCUSDT."""
    symbol = raw.strip().upper()
    if ":" in symbol:
        symbol = symbol.rsplit(":", 1)[1]
    for suffix in (".P", ".PERP", "PERP"):
        if symbol.endswith(suffix):
            symbol = symbol[: -len(suffix)]
            break
    return symbol


def _symbol(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("required: the symbol, e.g. BTCUSDT (send {{ticker}})")
    symbol = normalise_symbol(value)
    if not SYMBOL.fullmatch(symbol):
        raise ValueError(f"{value[:40]!r} is not a futures symbol like BTCUSDT")
    return symbol


def _text(value: object, limit: int, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError("required")
        return None
    if isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        value = str(value)  # an alert `id` may render as a bare number
    if not isinstance(value, str):
        raise ValueError(f"must be text, not {_json_type(value)}")
    value = value.strip()
    if len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    return value


def _amount(value: object, kind: str) -> Decimal | None:
    """A JSON number or a numeric string ("0.001", "1e-3"); absent, null or "" means not given...
    except that "" is what an unfilled placeholder renders, so it is refused where it was sent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, str)):
        raise ValueError(f"must be a number, not {_json_type(value)}")
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("is empty: send a number or leave the field out")
        text = value
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            raise ValueError(f"{text[:40]!r} is not a number") from None
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if kind == "positive" and value <= 0:
        raise ValueError(f"must be a positive number, not {value}")
    if value.adjusted() > 15 or (value and value.adjusted() < -12):
        raise ValueError(f"{value} is out of range")
    return value


def _take_profit(value: object) -> Decimal | None:
    """The alert's one `tp` price; a list of them (a ladder) is checked here, and kept in the payload."""
    if isinstance(value, list):
        alert_tp_ladder(value)
        return None
    return _amount(value, "positive")


def alert_tp_ladder(value: object) -> tuple[Decimal, ...] | None:
    """The alert's `tp` as a list of take-profit prices, one ladder level each; None when it is not a list."""
    if not isinstance(value, list):
        return None
    if not 1 <= len(value) <= LADDER_MAX:
        raise ValueError(f"a list of take-profit prices must hold 1 to {LADDER_MAX}, not {len(value)}")
    prices = []
    for n, item in enumerate(value, 1):
        try:
            price = _amount(item, "positive")
        except ValueError as error:
            raise ValueError(f"price {n} {error}") from None
        if price is None:
            raise ValueError(f"price {n} is null")
        prices.append(price)
    return tuple(prices)


ORDER_TYPES = ("market", "limit", "post_only")


def alert_order_type(value: object) -> str:
    """The alert's `order_type` for an entry: market, limit or post_only ("" when absent). Kept in the
    signal's payload, where the decision reads it back through this same reader."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    if not isinstance(value, str):
        raise ValueError(f"must be one of {', '.join(ORDER_TYPES)}, not {_json_type(value)}")
    word = value.strip().lower().replace("-", "_")
    if word not in ORDER_TYPES:
        raise ValueError(f"{value[:40]!r} is not one of {', '.join(ORDER_TYPES)}")
    return word


def alert_limit_price(value: object) -> Decimal | None:
    """The alert's `limit_price` (positive), read back from the payload by the decision."""
    return _amount(value, "positive")


def alert_trail(value: object) -> Decimal | None:
    """The alert's `trail`: a trailing stop's callback %, in Binance's range. Kept in the signal's
    payload, where the protection reads it back through this same reader."""
    callback = _amount(value, "positive")
    return None if callback is None else callback_checked(callback)


def _time(value: object) -> datetime:
    """ISO-8601 with Z or an offset ({{timenow}}), or epoch milliseconds."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("required: send {{timenow}} (ISO-8601 like 2025-01-15T14:30:05Z) or epoch milliseconds")
    if isinstance(value, bool):
        raise ValueError("must be a time, not a boolean")
    if isinstance(value, str) and re.fullmatch(r"\s*\d{10,16}\s*", value):
        value = Decimal(value.strip())
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value() or not 10**11 <= value < 10**14:
            raise ValueError(f"{value} is not epoch milliseconds")
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    if not isinstance(value, str):
        raise ValueError(f"must be a time, not {_json_type(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO-8601 time or epoch milliseconds") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value[:40]!r} has no time zone: add Z or an offset like +00:00")
    return parsed.astimezone(UTC)


def _market_position(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().lower() not in MARKET_POSITIONS:
        raise ValueError("must be long, short or flat")
    return value.strip().lower()


def _quantity_type(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().lower() not in QUANTITY_TYPES:
        raise ValueError("must be contracts, usdt or percent")
    return value.strip().lower()


def _comment(value: object) -> str:
    if value is None:
        return ""
    return (value if isinstance(value, str) else json.dumps(value, default=str))[:MAX_COMMENT]


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "an object", list: "an array", str: "a string", Decimal: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# --- identity and storage ----------------------------------------------------------------------------
def idempotency_key(signal: ParsedSignal) -> str:
    """The sender's own id when given, else a digest of what makes the signal this signal."""
    if signal.sender_id:
        return _fitted(f"id:{signal.strategy}:{signal.sender_id}")
    parts = [
        signal.strategy, signal.symbol, signal.action, signal.sender_time.isoformat(),
        _canonical(signal.quantity), _canonical(signal.price),
    ]
    return "sha256:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _fitted(key: str) -> str:
    """A sender key as it is while it fits the column: readable in the admin, and the same as the keys
    stored before, so a resend spanning a deploy is still a duplicate. A longer one becomes its digest
    (truncating it merged distinct alerts that shared a prefix). "id-sha256:" can equal neither a
    readable key ("id:…") nor a content digest ("sha256:…")."""
    if len(key) <= MAX_KEY:
        return key
    return "id-sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _canonical(number: Decimal | None) -> str:
    return "" if number is None else format(number.normalize(), "f")


def redact(data: dict) -> dict:
    """A JSON-safe copy for storage: secrets removed at any depth, numbers as written."""
    return {key: _safe(value) for key, value in data.items() if not SECRET_KEYS.fullmatch(str(key))}


def _safe(value: object) -> object:
    if isinstance(value, Decimal):
        # str() keeps 1e999999 short; "f" formatting would write out a million digits.
        return format(value, "f") if value.is_finite() and abs(value.adjusted()) < 30 else str(value)
    if isinstance(value, dict):
        return redact(value)
    if isinstance(value, list):
        return [_safe(item) for item in value]
    return value
