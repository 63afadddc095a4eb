"""Binance USDⓈ-M user data stream: the account's own events, live, as typed events.

A listenKey (POST /fapi/v1/listenKey) names the stream; it lives 60 minutes unless kept alive
(PUT, every KEEPALIVE_EVERY), and a keep-alive answered -1125 means it is gone: a new one is made and
the connection opened again. A connection lasts at most 24 hours, so one is replaced before then.
A connection that says nothing for RECV_TIMEOUT is taken for dead (Binance pings every 3 minutes).
Whenever the stream (re)opens, `StreamConnected` tells the caller that events may have been missed.

Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams
"""

import json
import logging
import time
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from threading import Event
from typing import TYPE_CHECKING, Any, NoReturn

import websocket

from trading.exchange.base import (
    AccountChange,
    AccountUpdate,
    ExchangeError,
    FillCause,
    LeverageUpdate,
    OrderState,
    OrderUpdate,
    PositionInfo,
    ProtectiveStatus,
    ProtectiveUpdate,
    StreamAlive,
    StreamConnected,
    StreamDown,
    UserEvent,
)

if TYPE_CHECKING:
    from trading.exchange.binance import BinanceExchange

logger = logging.getLogger(__name__)

KEEPALIVE_EVERY = 30 * 60.0  # seconds; Binance asks for one within 60 minutes
CONNECTION_MAX_AGE = 23 * 3600.0  # seconds: replaced before Binance cuts it at 24 hours
RECV_TIMEOUT = 5.0  # seconds each read waits, so keep-alives and `stop` are never late
SILENCE_LIMIT = 10 * 60.0  # seconds without any frame (Binance pings every 3 minutes): dead
BACKOFF_MAX = 30.0  # seconds between attempts while Binance cannot be reached
STABLE_AFTER = 60.0  # seconds: a connection that lived this long was not failing
LISTEN_KEY_GONE = "-1125"
# Binance's messages are a few kilobytes; anything near this is not one of them, and not worth parsing.
MESSAGE_MAX_CHARS = 1_000_000
AMOUNT_LIMIT = Decimal("1e18")  # what an amount column holds (trading.models.amounts.AMOUNT)
TIME_LIMIT_MS = 253402300800000  # 10000-01-01: past it, a timestamp is no time at all
LEVERAGE_MAX = 125  # Binance's highest

# Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Order-Update
STATES = {"NEW": OrderState.NEW, "PARTIALLY_FILLED": OrderState.PARTIALLY_FILLED, "FILLED": OrderState.FILLED,
          "CANCELED": OrderState.CANCELED, "EXPIRED": OrderState.EXPIRED, "EXPIRED_IN_MATCH": OrderState.EXPIRED,
          "REJECTED": OrderState.REJECTED}
# Reference: .../user-data-streams/Event-Algo-Order-Update
ALGO_STATUSES = {"NEW": ProtectiveStatus.RESTING, "TRIGGERING": ProtectiveStatus.TRIGGERED,
                 "TRIGGERED": ProtectiveStatus.TRIGGERED, "FINISHED": ProtectiveStatus.FINISHED,
                 "CANCELED": ProtectiveStatus.CANCELLED, "REJECTED": ProtectiveStatus.REJECTED,
                 "EXPIRED": ProtectiveStatus.EXPIRED}
# Reference: .../user-data-streams/Event-Balance-and-Position-Update ("m", the event reason type)
ACCOUNT_CHANGES = {"ORDER": AccountChange.TRADE, "FUNDING_FEE": AccountChange.FUNDING,
                   "DEPOSIT": AccountChange.TRANSFER, "WITHDRAW": AccountChange.TRANSFER,
                   "WITHDRAW_REJECT": AccountChange.TRANSFER, "ASSET_TRANSFER": AccountChange.TRANSFER,
                   "MARGIN_TRANSFER": AccountChange.TRANSFER, "ADMIN_DEPOSIT": AccountChange.TRANSFER,
                   "ADMIN_WITHDRAW": AccountChange.TRANSFER}


class ListenKeyGone(ExchangeError):
    """Binance no longer knows the listenKey (-1125): make a new one."""


class MalformedMessage(ValueError):
    """A stream message that is not one Binance sends; its reason quotes nothing of the message."""


class BinanceUserStream:
    def __init__(self, exchange: "BinanceExchange", *, url: str, keepalive_every: float = KEEPALIVE_EVERY,
                 max_age: float = CONNECTION_MAX_AGE) -> None:
        self.exchange = exchange
        self.url = url.rstrip("/")
        self.keepalive_every = keepalive_every
        self.max_age = max_age

    # --- the listenKey -----------------------------------------------------------------------------
    def listen_key(self) -> str:
        """The account's active listenKey (made, or the live one extended)."""
        return str(self.exchange._call(self.exchange.client.new_listen_key)["listenKey"])

    def keepalive(self, key: str) -> None:
        try:
            self.exchange._call(self.exchange.client.renew_listen_key, key)
        except ExchangeError as error:
            if error.code == LISTEN_KEY_GONE:
                raise ListenKeyGone("the stream's listenKey expired at Binance", code=error.code) from None
            raise

    # --- the connection ----------------------------------------------------------------------------
    def events(self, stop: Event) -> Iterator[UserEvent]:
        """Typed events until `stop` is set; reconnects by itself, saying so with StreamConnected
        (events may have been missed before it) and StreamDown."""
        backoff = 1.0
        while not stop.is_set():
            try:
                key = self.listen_key()
                connection = websocket.create_connection(f"{self.url}/{key}", timeout=RECV_TIMEOUT)
            except (ExchangeError, OSError, websocket.WebSocketException) as error:
                yield StreamDown(f"could not open the stream: {_plain(error)}", _now())
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            opened = time.monotonic()
            yield StreamConnected(_now())
            try:
                reason = yield from self._read(connection, key, stop)
            finally:
                connection.close()
            if reason:
                yield StreamDown(reason, _now())
                # A connection that lived a while is reopened at once; one that keeps failing, ever slower.
                backoff = 1.0 if time.monotonic() - opened > STABLE_AFTER else min(backoff * 2, BACKOFF_MAX)
                if backoff > 1.0:
                    stop.wait(backoff)

    def _read(self, connection: websocket.WebSocket, key: str, stop: Event) -> Generator[UserEvent, None, str]:
        """Events from one connection; returns why it ended ("" when asked to stop)."""
        opened = last_keepalive = last_frame = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now - opened > self.max_age:
                return "connection replaced before Binance's 24-hour cut-off"
            if now - last_frame > SILENCE_LIMIT:
                return f"nothing heard for {SILENCE_LIMIT:.0f} s"
            if now - last_keepalive > self.keepalive_every:
                try:
                    self.keepalive(key)
                except ListenKeyGone as gone:
                    return gone.reason
                except ExchangeError as error:
                    logger.warning("user stream: keep-alive failed, trying again: %s", error.reason)
                else:
                    last_keepalive = now
            try:
                message = connection.recv()
            except websocket.WebSocketTimeoutException:
                yield StreamAlive(_now())  # quiet (the library answers Binance's pings by itself)
                continue
            except (websocket.WebSocketException, OSError) as error:
                return f"the connection dropped: {_plain(error)}"
            last_frame = time.monotonic()
            if not message:
                continue
            try:
                event = parse_message(message)
            except ListenKeyGone as gone:
                return gone.reason
            except MalformedMessage as bad:
                # Skipped, never fatal; its content stays out of the log (a listenKey, balances).
                logger.warning("user stream: skipped a message: %s", bad)
                continue
            if event is not None:
                yield event
        return ""


# --- events -----------------------------------------------------------------------------------------
def parse_message(message: str | bytes) -> UserEvent | None:
    """One stream message as a typed event; None for the kinds we do not act on. Raises ListenKeyGone
    when Binance says the listenKey expired, and MalformedMessage for anything else it would not send:
    not JSON, not an object, too large or deep, a key missing, a number that is no amount (NaN,
    Infinity, 1e400), a time out of range."""
    if len(message) > MESSAGE_MAX_CHARS:
        raise MalformedMessage(f"{len(message)} characters, more than any message Binance sends")
    try:
        payload = json.loads(message, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise MalformedMessage(f"not JSON that can be read ({type(error).__name__})") from None
    if not isinstance(payload, dict):
        raise MalformedMessage(f"JSON {type(payload).__name__}, not an object")
    kind = payload.get("e")
    if kind == "listenKeyExpired":
        raise ListenKeyGone("the listenKey expired", code=LISTEN_KEY_GONE)
    try:
        return parse_event(payload)
    except Exception as error:  # whatever shape it has, one message must never stop the stream
        raise MalformedMessage(f"a {_kind(kind)} event that could not be read ({type(error).__name__})") from None


def parse_event(payload: dict[str, Any]) -> UserEvent | None:
    """One stream event as a typed event; None for the kinds we do not act on."""
    kind = payload.get("e")
    if kind == "ORDER_TRADE_UPDATE":
        return _order_update(payload["o"])
    if kind == "ALGO_UPDATE":
        return _algo_update(payload["o"], payload.get("T") or payload["E"])
    if kind == "ACCOUNT_UPDATE":
        return _account_update(payload["a"], payload.get("T") or payload["E"])
    if kind == "ACCOUNT_CONFIG_UPDATE" and "ac" in payload:  # "ai" (multi-assets mode) is not acted on
        return _leverage_update(payload["ac"], payload.get("T") or payload["E"])
    return None


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number Binance sends")


def _kind(kind: object) -> str:
    return kind if isinstance(kind, str) and kind.isidentifier() and len(kind) <= 40 else "unnamed"


def _order_update(o: dict[str, Any]) -> OrderUpdate:
    client_id = str(o["c"])
    last_price = _amount(o.get("L") or "0")
    average = _amount(o.get("ap") or "0")
    return OrderUpdate(
        symbol=_text(o["s"]), client_order_id=client_id, exchange_order_id=str(o["i"]), side=_text(o["S"]),
        position_side=_text(o.get("ps", "BOTH")), order_type=_text(o.get("o", "")), quantity=_amount(o["q"]),
        state=STATES[o["X"]], executed_qty=_amount(o["z"]), avg_price=average or None,
        last_qty=_amount(o.get("l") or "0"), last_price=last_price or None,
        commission=_amount(o.get("n") or "0"), commission_asset=_text(o.get("N") or ""),
        realized_pnl=_amount(o.get("rp") or "0"), trade_id=str(o.get("t") or ""),
        reduce_only=bool(o.get("R")), cause=_cause(client_id), time=_time(o["T"]),
    )


def _cause(client_id: str) -> FillCause:
    """Binance marks the orders it places itself by their client order id."""
    if client_id.startswith("autoclose-"):
        return FillCause.LIQUIDATION
    if client_id.startswith("adl_autoclose"):
        return FillCause.AUTO_DELEVERAGE
    if client_id.startswith("settlement_autoclose"):
        return FillCause.SETTLEMENT
    return FillCause.ORDER


def _algo_update(o: dict[str, Any], at: int) -> ProtectiveUpdate:
    return ProtectiveUpdate(symbol=_text(o["s"]), client_id=str(o["caid"]), status=ALGO_STATUSES[o["X"]],
                            order_id=str(o.get("ai") or ""), time=_time(at))


def _leverage_update(ac: dict[str, Any], at: int) -> LeverageUpdate:
    # Reference: .../user-data-streams/Event-Account-Configuration-Update-previous-Leverage-Update
    leverage = ac["l"]
    if not isinstance(leverage, int) or isinstance(leverage, bool) or not 1 <= leverage <= LEVERAGE_MAX:
        raise ValueError("not a leverage Binance allows")
    return LeverageUpdate(symbol=_text(ac["s"]), leverage=leverage, time=_time(at))


def _account_update(a: dict[str, Any], at: int) -> AccountUpdate:
    positions = tuple(
        PositionInfo(symbol=_text(p["s"]), position_side=_text(p.get("ps", "BOTH")), amount=_amount(p["pa"]),
                     entry_price=_amount(p["ep"]), unrealized_pnl=_amount(p.get("up") or "0"))
        for p in a.get("P", [])
    )
    balances = tuple((_text(b["a"]), _amount(b["wb"])) for b in a.get("B", []))
    return AccountUpdate(change=ACCOUNT_CHANGES.get(a.get("m", ""), AccountChange.OTHER), positions=positions,
                         balances=balances, time=_time(at))


def _amount(value: object) -> Decimal:
    """A number Binance sends as a string (or a JSON number): finite, and small enough to be stored."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError("not a number")
    amount = Decimal(str(value))
    if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
        raise ValueError("not an amount")
    return amount


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _time(ms: object) -> datetime:
    if isinstance(ms, bool) or not isinstance(ms, int | str):
        raise TypeError("not a time")
    milliseconds = int(ms)
    if not 0 < milliseconds < TIME_LIMIT_MS:
        raise ValueError("a time out of range")
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _plain(error: Exception) -> str:
    reason = error.reason if isinstance(error, ExchangeError) else f"{type(error).__name__}: {error}"
    return reason[:200]
