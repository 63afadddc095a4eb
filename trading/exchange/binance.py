"""Binance USDⓈ-M futures over binance-futures-connector's UMFutures: the only code that knows it.

One adapter per process (trading.exchange.get_exchange): one requests.Session, so orders ride a
warm keep-alive connection; exchangeInfo, the position mode and the clock offset are cached.
Every error leaves as PermanentError, RetryableError or OutcomeUnknownError with a reason a trader
can read. Keys, secrets and signatures never appear in a reason.

Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info
"""

import logging
import time
from decimal import Decimal

import requests
from binance.error import ClientError, ServerError
from binance.um_futures import UMFutures

from trading.exchange.base import (
    Balance,
    ExchangeError,
    OrderRequest,
    OrderResult,
    OutcomeUnknownError,
    PermanentError,
    PositionInfo,
    RetryableError,
    SymbolRules,
)
from trading.exchange.rules import parse_exchange_info

logger = logging.getLogger(__name__)

RULES_MAX_AGE = 600  # seconds before a missing symbol triggers a fresh exchangeInfo

# Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code
PLAIN_REASONS = {
    -1022: "the request signature was refused: check BINANCE_API_SECRET",
    -1102: "a required order parameter was missing or malformed",
    -1106: "an order parameter was sent that this order type does not take",
    -1111: "the quantity or price has more decimals than the symbol allows",
    -1121: "the symbol is not traded on Binance USDⓈ-M futures",
    -2014: "the API key is malformed: check BINANCE_API_KEY",
    -2015: "the API key was refused: wrong key, no futures permission, or this server's IP is not allowed",
    -2019: "not enough margin for this order",
    -2022: "reduce-only order refused: there is no position to reduce",
    -4003: "the quantity is below the symbol's minimum",
    -4005: "the quantity is above the symbol's maximum",
    -4028: "the leverage is not allowed for this symbol",
    -4048: "the margin type cannot change while a position or open orders exist",
    -4061: "the order's position side does not match the account's position mode (one-way/hedge)",
    -4164: "the order's value is below the symbol's minimum notional",
}
NO_NEED_TO_CHANGE_MARGIN = -4046
ORDER_DOES_NOT_EXIST = -2013
CLOCK = -1021
# "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
BACKEND_TIMEOUT = -1007


class _Client(UMFutures):
    """UMFutures stamps requests with local time; Binance refuses a timestamp 1 s ahead of its own
    clock or `recvWindow` behind it (-1021). This stamps local time + the measured offset."""

    offset_ms = 0

    def sign_request(self, http_method, url_path, payload=None, special=False):
        payload = dict(payload or {})
        payload["timestamp"] = int(time.time() * 1000) + self.offset_ms
        query_string = self._prepare_params(payload, special)
        payload["signature"] = self._get_sign(query_string)
        return self.send_request(http_method, url_path, payload, special)


class BinanceExchange:
    name = "binance"

    def __init__(self, *, api_key: str, api_secret: str, base_url: str, timeout: float, recv_window: int):
        self.client = _Client(key=api_key, secret=api_secret, base_url=base_url, timeout=timeout)
        self.recv_window = recv_window
        self.timeout = timeout
        self._clock_measured = False
        self._hedge_mode: bool | None = None
        self._rules: dict[str, SymbolRules] = {}
        self._rules_at = 0.0

    # --- orders ---------------------------------------------------------------------------------
    def place_market_order(self, order: OrderRequest) -> OrderResult:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Order
        params = {
            "newClientOrderId": order.client_order_id,
            "quantity": format(order.quantity, "f"),
            "newOrderRespType": "RESULT",  # the answer carries executedQty and avgPrice
        }
        if order.position_side != "BOTH":
            params["positionSide"] = order.position_side  # hedge mode: reduceOnly is refused there
        elif order.reduce_only:
            params["reduceOnly"] = "true"
        answer = self._signed(self.client.new_order, order.symbol, order.side, "MARKET", placing=True, **params)
        return _order_result(answer)

    def get_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        try:
            answer = self._signed(self.client.query_order, symbol, origClientOrderId=client_order_id)
        except PermanentError as error:
            if error.code == str(ORDER_DOES_NOT_EXIST):
                return None
            raise
        return _order_result(answer)

    # --- account settings -----------------------------------------------------------------------
    def set_leverage(self, symbol: str, leverage: int) -> None:
        self._signed(self.client.change_leverage, symbol, leverage)

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        try:
            self._signed(self.client.change_margin_type, symbol, "ISOLATED" if margin_type == "isolated" else "CROSSED")
        except PermanentError as error:
            if error.code != str(NO_NEED_TO_CHANGE_MARGIN):
                raise

    def is_hedge_mode(self) -> bool:
        if self._hedge_mode is None:
            self._hedge_mode = bool(self._signed(self.client.get_position_mode)["dualSidePosition"])
        return self._hedge_mode

    # --- reads ----------------------------------------------------------------------------------
    def get_balance(self) -> Balance:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Account-Information-V3
        account = self._signed(self.client.account)
        return Balance(
            asset="USDT",
            wallet_balance=Decimal(account["totalWalletBalance"]),
            available_balance=Decimal(account["availableBalance"]),
            equity=Decimal(account["totalMarginBalance"]),
            unrealized_pnl=Decimal(account["totalUnrealizedProfit"]),
        )

    def get_positions(self) -> list[PositionInfo]:
        rows = self._signed(self.client.get_position_risk)
        return [
            PositionInfo(
                symbol=row["symbol"],
                position_side=row.get("positionSide", "BOTH"),
                amount=Decimal(row["positionAmt"]),
                entry_price=Decimal(row["entryPrice"]),
                unrealized_pnl=Decimal(row.get("unRealizedProfit", "0")),
                mark_price=Decimal(row["markPrice"]) if row.get("markPrice") else None,
            )
            for row in rows
            if Decimal(row["positionAmt"]) != 0
        ]

    def get_symbol_rules(self, symbol: str) -> SymbolRules:
        if symbol not in self._rules and time.monotonic() - self._rules_at > RULES_MAX_AGE:
            self._rules = parse_exchange_info(self._call(self.client.exchange_info))
            self._rules_at = time.monotonic()
        try:
            return self._rules[symbol]
        except KeyError:
            raise PermanentError(f"{symbol} is not a USDⓈ-M perpetual that Binance trades", code="-1121") from None

    def get_mark_price(self, symbol: str) -> Decimal:
        return Decimal(self._call(self.client.mark_price, symbol)["markPrice"])

    def server_time_ms(self) -> int:
        return int(self._call(self.client.time)["serverTime"])

    # --- transport ------------------------------------------------------------------------------
    def measure_clock(self) -> int:
        """Offset of Binance's clock from ours (ms), from the midpoint of a server-time request."""
        before = time.time()
        server = self.server_time_ms()
        after = time.time()
        self.client.offset_ms = server - int((before + after) / 2 * 1000)
        self._clock_measured = True
        return self.client.offset_ms

    def _signed(self, method, *args, placing: bool = False, **params):
        if not self._clock_measured:
            self.measure_clock()
        try:
            return self._call(method, *args, placing=placing, recvWindow=self.recv_window, **params)
        except RetryableError as error:
            if error.code != str(CLOCK):
                raise
        # -1021: the request was refused for its timestamp, so nothing happened; measure and retry once.
        logger.warning("binance: timestamp outside the receive window; re-measuring the clock offset")
        self.measure_clock()
        return self._call(method, *args, placing=placing, recvWindow=self.recv_window, **params)

    def _call(self, method, *args, placing: bool = False, **params):
        try:
            return method(*args, **params)
        except ClientError as error:
            raise _client_error(error, placing) from None
        except ServerError as error:
            reason = f"Binance answered HTTP {error.status_code}"
            if placing:
                raise OutcomeUnknownError(f"{reason} to the order: it may or may not have been placed", code=str(error.status_code)) from None
            raise RetryableError(reason, code=str(error.status_code)) from None
        except requests.RequestException as error:
            raise _transport_error(error, placing, self.timeout) from None


def _client_error(error: ClientError, placing: bool) -> ExchangeError:
    code, status = error.error_code, error.status_code
    message = str(error.error_message)[:200]
    if status in (418, 429):
        retry_after = _retry_after(error.header)
        what = "banned for flooding" if status == 418 else "rate limited"
        return RetryableError(f"Binance {what}; retry in {retry_after or '?'} s", code=str(status), retry_after=retry_after)
    if code == CLOCK:
        return RetryableError("the request's timestamp was outside Binance's receive window (clock drift)", code=str(code))
    if code == BACKEND_TIMEOUT:
        kind = OutcomeUnknownError if placing else RetryableError
        return kind("Binance's backend timed out: execution status unknown", code=str(code))
    plain = PLAIN_REASONS.get(code, "Binance refused the request")
    return PermanentError(f"{plain} (Binance {code}: {message})", code=str(code))


def _transport_error(error: requests.RequestException, placing: bool, timeout: float) -> ExchangeError:
    if isinstance(error, requests.ConnectTimeout) or _never_connected(error):
        return RetryableError("could not connect to Binance (nothing was sent)", code="connect")
    if isinstance(error, requests.Timeout):
        reason = f"Binance did not answer within {timeout:g} s"
        return OutcomeUnknownError(reason, code="timeout") if placing else RetryableError(reason, code="timeout")
    reason = f"the connection to Binance failed mid-request ({type(error).__name__})"
    return OutcomeUnknownError(reason, code="connection") if placing else RetryableError(reason, code="connection")


def _never_connected(error: requests.RequestException) -> bool:
    text = str(error)
    return isinstance(error, requests.ConnectionError) and ("NewConnectionError" in text or "Connection refused" in text)


def _retry_after(headers) -> float | None:
    try:
        return float(headers.get("Retry-After")) if headers and headers.get("Retry-After") else None
    except (TypeError, ValueError):
        return None


def _order_result(answer: dict) -> OrderResult:
    average = Decimal(str(answer.get("avgPrice") or "0"))
    return OrderResult(
        client_order_id=answer["clientOrderId"],
        exchange_order_id=str(answer["orderId"]),
        status=answer["status"],
        executed_qty=Decimal(str(answer.get("executedQty") or "0")),
        avg_price=average if average else None,
        raw=answer,
    )
