"""Binance USDⓈ-M futures over binance-futures-connector's UMFutures: the only code that knows it.

One adapter per process (trading.exchange.get_exchange): one requests.Session, so orders ride a
warm keep-alive connection; exchangeInfo, the position mode and the clock offset are cached.
Every error leaves as PermanentError, RetryableError or OutcomeUnknownError with a reason a trader
can read. Keys, secrets and signatures never appear in a reason.

Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info
"""

import hashlib
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import requests
from binance.error import ClientError, ServerError
from binance.um_futures import UMFutures

from trading.exchange import log_guard
from trading.exchange.base import (
    KLINES_PAGE_MAX,
    Balance,
    ExchangeError,
    Fill,
    IncomeKind,
    IncomeRecord,
    Kline,
    NothingToReduce,
    OrderRequest,
    OrderResult,
    OrderState,
    OutcomeUnknown,
    PermanentError,
    PositionInfo,
    PrecisionRejected,
    ProtectiveRequest,
    ProtectiveState,
    RateLimits,
    RateUsage,
    RetryableError,
    SetupLine,
    SymbolRules,
    SymbolSettings,
    UnknownSymbol,
    WouldTake,
)
from trading.exchange.binance_setup import setup_lines
from trading.exchange.binance_stream import BinanceUserStream
from trading.exchange.rules import parse_exchange_info

logger = logging.getLogger(__name__)

RULES_MAX_AGE = 3600.0  # seconds: symbol filters change rarely; refreshed on use after this
RULES_RETRY_AGE = 60.0  # seconds: an unknown symbol refetches exchangeInfo at most this often
HEDGE_MODE_MAX_AGE = 60.0  # seconds: the position mode can be switched in Binance's own UI
# An order not found once the exchange's clock has passed its timestamp + recvWindow can no longer be
# accepted; this margin covers a request accepted at the last moment and still in the matching engine.
SETTLE_MARGIN_MS = 2000
# Reference: exchangeInfo's rateLimits (REQUEST_WEIGHT, 1 minute) on USDⓈ-M futures.
REQUEST_WEIGHT_LIMIT = 2400
# Reference: exchangeInfo's rateLimits (ORDERS: 300 per 10 seconds, 1,200 per minute, per account) and
# https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#limits: each answer to
# an order carries the account's counts in these headers; every answer carries the IP's weight this minute.
ORDER_LIMITS = ((300, 10.0), (1200, 60.0))
ORDER_COUNT_HEADERS = ("X-MBX-ORDER-COUNT-10S", "X-MBX-ORDER-COUNT-1M")
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
BAN_DEFAULT_SECONDS = 120.0  # a 418 without Retry-After: Binance bans for 2 minutes at the least

# Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code
PLAIN_REASONS = {
    -1022: "the request signature was refused: check BINANCE_API_SECRET",
    -1102: "a required order parameter was missing or malformed",
    -1106: "an order parameter was sent that this order type does not take",
    -1111: "the quantity or price has more decimals than the symbol allows",
    -1121: "the symbol is not traded on Binance USDⓈ-M futures",
    -2014: "the API key is malformed: check BINANCE_API_KEY",
    -2015: "the API key was refused: check the key, its IP allow-list and that Futures is enabled",
    -2019: "not enough margin for this order",
    -2022: "reduce-only order refused: there is no position to reduce",
    -4003: "the quantity is below the symbol's minimum",
    -4005: "the quantity is above the symbol's maximum",
    -4028: "the leverage is not allowed for this symbol",
    -4048: "the margin type cannot change while a position or open orders exist",
    -4061: "the order's position side does not match the account's position mode (one-way/hedge)",
    -4014: "the price is not on the symbol's tick",
    -4164: "the order's value is below the symbol's minimum notional",
    -5022: "post-only: the order would have taken liquidity at once, so the exchange did not place it",
}
REFUSALS: dict[int, type[PermanentError]] = {-2022: NothingToReduce, -1111: PrecisionRejected, -1121: UnknownSymbol,
                                              -4014: PrecisionRejected, -5022: WouldTake}
RULES_STALE = (-1111, -1121, -4164)  # the symbol's filters may have changed: fetch them again
NO_NEED_TO_CHANGE_MARGIN = -4046
ORDER_DOES_NOT_EXIST = -2013
CANCEL_UNKNOWN_ORDER = -2011  # a cancel of an order that is filled, cancelled or was never there
POSITION_SIDE_MISMATCH = -4061
CLOCK = -1021
# "Execution status unknown" and their kin: an order request answered with these may have been placed.
# -1000 unknown, -1001 disconnected, -1006 unexpected response, -1007 backend timeout, -1008 overloaded.
STATUS_UNKNOWN = (-1000, -1001, -1006, -1007, -1008)
ALGO_TYPES = {"stop_loss": "STOP_MARKET", "take_profit": "TAKE_PROFIT_MARKET", "trailing": "TRAILING_STOP_MARKET"}
MARGIN_TYPES = {"cross": "CROSSED", "isolated": "ISOLATED"}  # ours → Binance's
STATES = {
    "NEW": OrderState.NEW,
    "PARTIALLY_FILLED": OrderState.PARTIALLY_FILLED,
    "FILLED": OrderState.FILLED,
    "CANCELED": OrderState.CANCELED,
    "EXPIRED": OrderState.EXPIRED,
    "EXPIRED_IN_MATCH": OrderState.EXPIRED,
    "REJECTED": OrderState.REJECTED,
}


# Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Income-History
INCOME_KINDS = {"REALIZED_PNL": IncomeKind.REALIZED_PNL, "COMMISSION": IncomeKind.COMMISSION,
                "FUNDING_FEE": IncomeKind.FUNDING_FEE}
INCOME_PAGE_MAX = 1000
# Binance keeps income for three months; without a startTime it answers only the last seven days.
INCOME_KEPT_MS = 90 * 24 * 3600 * 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Kline-Candlestick-Data
# Public (no key, no signature). A row: [openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, …].
KLINES_PATH = "/fapi/v1/klines"
KLINES_INTERVAL = "1m"

class _Client(UMFutures):
    """UMFutures stamps requests with local time; Binance refuses a timestamp 1 s ahead of its own
    clock or `recvWindow` behind it (-1021). This stamps local time + the measured offset, or the
    timestamp the caller chose (an order's, recorded before it is sent)."""

    offset_ms = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def sign_request(self, http_method: str, url_path: str, payload: dict | None = None, special: bool = False) -> Any:
        payload = dict(payload or {})
        payload.setdefault("timestamp", self.now_ms())
        query_string = self._prepare_params(payload, special)
        payload["signature"] = self._get_sign(query_string)
        return self.send_request(http_method, url_path, payload, special)


class BinanceExchange:
    name = "binance"

    def __init__(self, *, api_key: str, api_secret: str, base_url: str, timeout: float, recv_window: int,
                 testnet: bool = True, stream_url: str = "", connections: int = 10) -> None:
        self.stream_url = stream_url
        self.client = _Client(key=api_key, secret=api_secret, base_url=base_url, timeout=timeout)
        # A keep-alive connection for each of the process's order threads (WORKER_THREADS): requests
        # keeps 10 and would open (and close) one more per request past that.
        pool = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(connections, 10))
        self.client.session.mount("https://", pool)
        self.client.session.mount("http://", pool)
        self.recv_window = recv_window
        self.timeout = timeout
        # A digest, not the key: names the account in our tables without revealing anything.
        key_digest = hashlib.sha256(api_key.encode()).hexdigest()[:10]
        self._account_id = f"binance-{'testnet' if testnet else 'live'}-{key_digest}"
        self._clock_measured = False
        self._hedge_mode: tuple[bool, float] | None = None  # (value, monotonic time read)
        self._rules: dict[str, SymbolRules] = {}
        self._rules_read_at: float | None = None  # monotonic; None: never read
        self._paused_until = 0.0  # monotonic; after a 429/418 no request leaves before this
        self._weight: tuple[int, float] | None = None  # (X-MBX-USED-WEIGHT-1M, monotonic time read)
        self.client.session.hooks["response"].append(self._note_weight)
        self._usage = RateUsage()
        self.client.session.hooks["response"].append(self._note_usage)
        log_guard.install()  # the connector and urllib3 would log signed URLs, listenKeys and raw answers

    @property
    def account_id(self) -> str:
        return self._account_id

    # --- orders ---------------------------------------------------------------------------------
    def order_stamp(self) -> int:
        if not self._clock_measured:
            self.measure_clock()
        return self.client.now_ms()

    def place_market_order(self, order: OrderRequest, *, stamp: int) -> OrderResult:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Order
        answer = self._call(self.client.new_order, order.symbol, order.side, "MARKET", placing=True,
                            **self._order_params(order, stamp))
        return _order_result(answer)

    def place_limit_order(self, order: OrderRequest, *, stamp: int) -> OrderResult:
        assert order.limit_price is not None
        rules = self.get_symbol_rules(order.symbol)
        if rules.round_price(order.limit_price, order.side) != order.limit_price:
            raise PrecisionRejected(f"price {order.limit_price} does not fit {order.symbol}'s tick of {rules.tick_size}",
                                    code="-4014")
        params = self._order_params(order, stamp)
        params["price"] = rules.format_price(order.limit_price)
        params["timeInForce"] = "GTX" if order.post_only else "GTC"
        answer = self._call(self.client.new_order, order.symbol, order.side, "LIMIT", placing=True, **params)
        return _order_result(answer)

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Cancel-Order
        try:
            answer = self._signed(self.client.cancel_order, symbol, origClientOrderId=client_order_id)
        except PermanentError as error:
            if error.code not in (str(CANCEL_UNKNOWN_ORDER), str(ORDER_DOES_NOT_EXIST)):
                raise
            # Filled or cancelled already (or never there): its own word says which.
            return self.get_order(symbol, client_order_id, stamp=None)
        return _order_result(answer)

    def _order_params(self, order: OrderRequest, stamp: int) -> dict[str, Any]:
        rules = self.get_symbol_rules(order.symbol)
        if rules.round_quantity(order.quantity) != order.quantity:
            raise PrecisionRejected(f"quantity {order.quantity} does not fit {order.symbol}'s step of {rules.step_size}",
                                    code="-1111")
        params: dict[str, Any] = {
            "newClientOrderId": order.client_order_id,
            "quantity": rules.format_quantity(order.quantity),
            "newOrderRespType": "RESULT",  # the answer carries executedQty and avgPrice
            "recvWindow": self.recv_window,
            # The stamp the caller recorded: a lost answer is judged by it. No re-signing here: a
            # -1021 goes back to the caller, which records a new stamp before sending again.
            "timestamp": stamp,
        }
        if order.position_side != "BOTH":
            params["positionSide"] = order.position_side  # hedge mode: reduceOnly is refused there
        elif order.reduce_only:
            params["reduceOnly"] = "true"
        return params

    def get_order(self, symbol: str, client_order_id: str, *, stamp: int | None) -> OrderResult | None:
        try:
            answer = self._signed(self.client.query_order, symbol, origClientOrderId=client_order_id)
        except PermanentError as error:
            if error.code != str(ORDER_DOES_NOT_EXIST):
                raise
            self._check_absence_conclusive(stamp)
            return None
        return _order_result(answer)

    def _check_absence_conclusive(self, stamp: int | None) -> None:
        """Not found: conclusive only once no request carrying `stamp` can still be accepted."""
        wait_ms = 0 if stamp is None else stamp + self.recv_window + SETTLE_MARGIN_MS - self.client.now_ms()
        if wait_ms > 0:
            raise OutcomeUnknown(
                "the order is not at the exchange yet, and its request could still be accepted",
                code="not-yet", retry_after=wait_ms / 1000)

    # --- account settings -----------------------------------------------------------------------
    def set_leverage(self, symbol: str, leverage: int) -> None:
        self._signed(self.client.change_leverage, symbol, leverage)

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        try:
            self._signed(self.client.change_margin_type, symbol, MARGIN_TYPES.get(margin_type, "CROSSED"))
        except PermanentError as error:
            if error.code != str(NO_NEED_TO_CHANGE_MARGIN):
                raise

    def get_symbol_settings(self, symbols: Collection[str]) -> dict[str, SymbolSettings]:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Symbol-Config
        # Weight 5. One symbol is asked for by name; several in one request for every symbol.
        wanted = set(symbols)
        if not wanted:
            return {}
        by_name = {"symbol": next(iter(wanted))} if len(wanted) == 1 else {}
        rows = self._signed(self.client.symbol_configuration, **by_name)
        return {row["symbol"]: _symbol_settings(row) for row in rows if row.get("symbol") in wanted}

    def check_setup(self, symbols: Collection[str]) -> list[SetupLine]:
        return setup_lines(self, symbols)

    def is_hedge_mode(self) -> bool:
        if self._hedge_mode is None or time.monotonic() - self._hedge_mode[1] > HEDGE_MODE_MAX_AGE:
            value = bool(self._signed(self.client.get_position_mode)["dualSidePosition"])
            self._hedge_mode = (value, time.monotonic())
        return self._hedge_mode[0]

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
        # positionRisk v3 no longer carries leverage and margin type: symbolConfig does.
        rows = [row for row in self._signed(self.client.get_position_risk) if Decimal(row["positionAmt"]) != 0]
        try:
            settings = self.get_symbol_settings({row["symbol"] for row in rows})
        except PermanentError as error:
            logger.warning("binance: positions read without their leverage and margin type: %s", error.reason)
            settings = {}
        return [
            PositionInfo(
                symbol=row["symbol"],
                position_side=row.get("positionSide", "BOTH"),
                amount=Decimal(row["positionAmt"]),
                entry_price=Decimal(row["entryPrice"]),
                unrealized_pnl=Decimal(row.get("unRealizedProfit", "0")),
                mark_price=Decimal(row["markPrice"]) if row.get("markPrice") else None,
                updated_at=_from_ms(row["updateTime"]) if row.get("updateTime") else None,
                leverage=settings[row["symbol"]].leverage if row["symbol"] in settings else None,
                margin_type=settings[row["symbol"]].margin_type if row["symbol"] in settings else "",
            )
            for row in rows
        ]

    def get_symbol_rules(self, symbol: str) -> SymbolRules:
        self._refresh_rules(missing=symbol not in self._rules)
        try:
            return self._rules[symbol]
        except KeyError:
            raise UnknownSymbol(f"{symbol} is not a USDⓈ-M perpetual that Binance trades", code="-1121") from None

    def tradable_symbols(self) -> frozenset[str]:
        self._refresh_rules(missing=False)
        return frozenset(self._rules)

    def _refresh_rules(self, *, missing: bool) -> None:
        age = None if self._rules_read_at is None else time.monotonic() - self._rules_read_at
        if age is None or age > RULES_MAX_AGE or (missing and age > RULES_RETRY_AGE):
            self._rules = parse_exchange_info(self._call(self.client.exchange_info))
            self._rules_read_at = time.monotonic()

    def get_mark_price(self, symbol: str) -> Decimal:
        return Decimal(self._call(self.client.mark_price, symbol)["markPrice"])

    def server_time_ms(self) -> int:
        return int(self._call(self.client.time)["serverTime"])

    def get_klines(self, symbol: str, *, start_ms: int, end_ms: int, limit: int) -> list[Kline]:
        # Unsigned, through the same path as the mark price: the weight header is noted by the session's hook.
        rows = self._call(self.client.klines, symbol, KLINES_INTERVAL, startTime=start_ms, endTime=end_ms,
                          limit=klines_limit(limit))
        return parse_klines(symbol, rows, start_ms=start_ms, end_ms=end_ms)

    # --- the ledger ---------------------------------------------------------------------------
    def get_income(self, *, start_ms: int | None, limit: int) -> list[IncomeRecord]:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Income-History
        # Weight 30 a call. incomeType omitted: every kind, so one page covers them all.
        if not self._clock_measured:
            self.measure_clock()
        start = self.client.now_ms() - INCOME_KEPT_MS if start_ms is None else start_ms
        rows = self._signed(self.client.get_income_history, startTime=start, limit=max(1, min(limit, INCOME_PAGE_MAX)))
        return sorted((_income_record(row) for row in rows), key=lambda record: record.time)

    def get_fills(self, symbol: str, *, order_id: str) -> list[Fill]:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Account-Trade-List
        # Weight 5. An order's trades: no time window applies when orderId is given.
        rows = self._signed(self.client.get_account_trades, symbol=symbol, orderId=order_id)
        return [_fill(row) for row in rows]

    # --- protective orders: conditional algo orders ----------------------------------------------
    # Since 2025-12-09 STOP_MARKET / TAKE_PROFIT_MARKET go to the algo endpoint (-4120 on /fapi/v1/order),
    # which the connector has no method for. Reference:
    # https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Algo-Order
    def place_protective(self, request: ProtectiveRequest) -> str:
        rules = self.get_symbol_rules(request.symbol)
        params: dict[str, Any] = {
            "algoType": "CONDITIONAL", "symbol": request.symbol, "side": request.side, "type": ALGO_TYPES[request.kind],
            "workingType": "MARK_PRICE", "clientAlgoId": request.client_id, **_algo_amounts(request, rules),
        }
        if request.position_side != "BOTH":
            params["positionSide"] = request.position_side
        try:
            answer = self._algo("POST", "/fapi/v1/algoOrder", params)
        except PermanentError:
            # A retry of a placement whose answer was lost: the id resting there means it is placed.
            resting = [o for o in self.open_protective(request.symbol) if o.client_id == request.client_id]
            if resting:
                return resting[0].exchange_id
            raise
        return str(answer.get("algoId", ""))

    def cancel_protective(self, symbol: str, client_id: str) -> None:
        try:
            self._algo("DELETE", "/fapi/v1/algoOrder", {"symbol": symbol, "clientAlgoId": client_id})
        except PermanentError:
            if any(o.client_id == client_id for o in self.open_protective(symbol)):
                raise  # still there: the refusal was about something else

    def open_protective(self, symbol: str) -> list[ProtectiveState]:
        rows = self._algo("GET", "/fapi/v1/openAlgoOrders", {"symbol": symbol})
        kinds = {value: key for key, value in ALGO_TYPES.items()}
        return [
            ProtectiveState(client_id=row["clientAlgoId"], exchange_id=str(row.get("algoId", "")), symbol=row["symbol"],
                            kind=kinds.get(row.get("orderType", ""), "other"),
                            trigger=Decimal(str(row.get("triggerPrice") or row.get("activatePrice") or 0)))
            for row in rows
        ]

    def request_weight(self) -> tuple[int, int] | None:
        """The request weight this IP has used in the current minute, as Binance's last answer said,
        and the limit; None before any answer or once that is over a minute old."""
        if self._weight is None or time.monotonic() - self._weight[1] > 60:
            return None
        return self._weight[0], REQUEST_WEIGHT_LIMIT

    def _note_weight(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        used = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if used is not None and used.isdigit():
            self._weight = (int(used), time.monotonic())

    def rate_limits(self) -> RateLimits:
        return RateLimits(orders=ORDER_LIMITS, weight_per_minute=REQUEST_WEIGHT_LIMIT)

    def rate_usage(self) -> RateUsage:
        return self._usage

    def _note_usage(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """What the answer says Binance has counted: the account's orders (answers to orders only)
        and the IP's weight in the current minute of Binance's clock."""
        now, usage = time.time(), self._usage
        counts = [response.headers.get(name, "") for name in ORDER_COUNT_HEADERS]
        if all(count.isdigit() for count in counts):
            usage = replace(usage, orders=tuple(int(count) for count in counts), orders_at=now)
        used = response.headers.get(USED_WEIGHT_HEADER, "")
        if used.isdigit():
            server_seconds = now + self.client.offset_ms / 1000
            usage = replace(usage, weight=int(used), weight_until=now + 60 - server_seconds % 60)
        self._usage = usage

    def user_stream(self) -> BinanceUserStream | None:
        return BinanceUserStream(self, url=self.stream_url) if self.stream_url else None

    def _algo(self, http_method: str, path: str, params: dict[str, Any]) -> Any:
        """A signed call to an endpoint the connector lacks, re-signed once after a -1021."""
        return self._signed(lambda **signed: self.client.sign_request(http_method, path, {**params, **signed}))

    # --- transport ------------------------------------------------------------------------------
    def measure_clock(self) -> int:
        """Offset of Binance's clock from ours (ms), from the midpoint of a server-time request."""
        before = time.time()
        server = self.server_time_ms()
        after = time.time()
        self.client.offset_ms = server - int((before + after) / 2 * 1000)
        self._clock_measured = True
        return self.client.offset_ms

    def _signed(self, method: Callable[..., Any], *args: Any, **params: Any) -> Any:
        """A signed read or setting change, re-signed once after a -1021 (nothing happened then)."""
        if not self._clock_measured:
            self.measure_clock()
        try:
            return self._call(method, *args, recvWindow=self.recv_window, **params)
        except RetryableError as error:
            if error.code != str(CLOCK):
                raise
        return self._call(method, *args, recvWindow=self.recv_window, **params)

    def _call(self, method: Callable[..., Any], *args: Any, placing: bool = False, **params: Any) -> Any:
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            # After a 429 or 418 every request waits: one more during a ban lengthens it.
            raise RetryableError(f"holding back after Binance's rate limit: {pause:.0f} s to go", code="backoff",
                                 retry_after=pause)
        try:
            return method(*args, **params)
        except ClientError as error:
            raise self._refusal(error, placing) from None
        except ServerError as error:
            reason = f"Binance answered HTTP {error.status_code}"
            if placing:
                raise OutcomeUnknown(f"{reason} to the order: it may or may not have been placed",
                                     code=str(error.status_code)) from None
            raise RetryableError(reason, code=str(error.status_code)) from None
        except requests.RequestException as error:
            raise _transport_error(error, placing, self.timeout) from None

    def _refusal(self, error: ClientError, placing: bool) -> ExchangeError:
        """A 4xx as one of our errors, with what it teaches the adapter (clock, rules, mode, ban)."""
        code = error.error_code
        if error.status_code in (418, 429):
            retry_after = _retry_after(error.header) or (BAN_DEFAULT_SECONDS if error.status_code == 418 else 1.0)
            self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
        elif code == CLOCK:
            logger.warning("binance: timestamp outside the receive window; re-measuring the clock offset")
            self._clock_measured = False
        elif code in RULES_STALE:
            self._rules_read_at = None
        elif code == POSITION_SIDE_MISMATCH:
            self._hedge_mode = None
        return _client_error(error, placing)


def _client_error(error: ClientError, placing: bool) -> ExchangeError:
    code, status = error.error_code, error.status_code
    message = str(error.error_message)[:200]
    if status in (418, 429):
        retry_after = _retry_after(error.header)
        what = "banned for flooding" if status == 418 else "rate limited"
        return RetryableError(f"Binance {what}; retry in {retry_after or '?'} s", code=str(status), retry_after=retry_after)
    if code == CLOCK:
        return RetryableError("the request's timestamp was outside Binance's receive window (clock drift)", code=str(code))
    if code in STATUS_UNKNOWN:
        kind = OutcomeUnknown if placing else RetryableError
        return kind(f"Binance could not say what became of the request (Binance {code}: {message})", code=str(code))
    plain = PLAIN_REASONS.get(code, "Binance refused the request")
    return REFUSALS.get(code, PermanentError)(f"{plain} (Binance {code}: {message})", code=str(code))


def _transport_error(error: requests.RequestException, placing: bool, timeout: float) -> ExchangeError:
    if isinstance(error, requests.ConnectTimeout) or _never_connected(error):
        return RetryableError("could not connect to Binance (nothing was sent)", code="connect")
    if isinstance(error, requests.Timeout):
        reason = f"Binance did not answer within {timeout:g} s"
        return OutcomeUnknown(reason, code="timeout") if placing else RetryableError(reason, code="timeout")
    reason = f"the connection to Binance failed mid-request ({type(error).__name__})"
    return OutcomeUnknown(reason, code="connection") if placing else RetryableError(reason, code="connection")


def _never_connected(error: requests.RequestException) -> bool:
    text = str(error)
    return isinstance(error, requests.ConnectionError) and ("NewConnectionError" in text or "Connection refused" in text)


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After")) if headers and headers.get("Retry-After") else None
    except (TypeError, ValueError):
        return None


def _order_result(answer: dict[str, Any]) -> OrderResult:
    average = Decimal(str(answer.get("avgPrice") or "0"))
    return OrderResult(
        client_order_id=answer["clientOrderId"],
        exchange_order_id=str(answer["orderId"]),
        state=STATES.get(answer["status"], OrderState.NEW),
        executed_qty=Decimal(str(answer.get("executedQty") or "0")),
        avg_price=average if average else None,
        raw=answer,
        updated_at=_from_ms(answer["updateTime"]) if answer.get("updateTime") else None,
    )


def _symbol_settings(row: dict[str, Any]) -> SymbolSettings:
    ours = {wire: mine for mine, wire in MARGIN_TYPES.items()}
    margin = str(row.get("marginType", ""))
    return SymbolSettings(symbol=row["symbol"], leverage=int(row["leverage"]), margin_type=ours.get(margin, margin.lower()))


def _from_ms(ms: Any) -> datetime:
    return EPOCH + timedelta(milliseconds=int(ms))


# --- klines: shared with the paper exchange, which reads them from a Binance REST base URL ----------
def klines_limit(limit: int) -> int:
    return max(1, min(limit, KLINES_PAGE_MAX))


def parse_klines(symbol: str, rows: Any, *, start_ms: int, end_ms: int) -> list[Kline]:
    """Binance's kline rows as Klines, oldest first, those opened in [start_ms, end_ms] only. Prices
    are read from their strings, never through a float."""
    if not isinstance(rows, list):
        raise RetryableError(f"Binance answered klines with a {type(rows).__name__}, not a list", code="klines")
    klines = []
    for row in rows:
        try:
            open_ms = int(row[0])
            kline = Kline(symbol=symbol, open_time=_from_ms(open_ms), open=_decimal(row[1]), high=_decimal(row[2]),
                          low=_decimal(row[3]), close=_decimal(row[4]), volume=_decimal(row[5]))
        except (TypeError, ValueError, IndexError, ArithmeticError):
            raise RetryableError(f"Binance answered a kline row that cannot be read: {str(row)[:120]}",
                                 code="klines") from None
        if start_ms <= open_ms <= end_ms:
            klines.append(kline)
    return sorted(klines, key=lambda kline: kline.open_time)


def _decimal(value: Any) -> Decimal:
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value}")
    return number


def public_klines(session: requests.Session, base_url: str, symbol: str, *, start_ms: int, end_ms: int, limit: int,
                  timeout: float) -> list[Kline]:
    """One page of klines from `base_url`'s public endpoint over plain requests (no connector, no key):
    the paper exchange's history, read from its price feed. Errors as the adapter raises them."""
    params: dict[str, str | int] = {"symbol": symbol, "interval": KLINES_INTERVAL, "startTime": start_ms,
                                    "endTime": end_ms, "limit": klines_limit(limit)}
    try:
        response = session.get(f"{base_url.rstrip('/')}{KLINES_PATH}", params=params, timeout=timeout)
    except requests.RequestException as error:
        raise _transport_error(error, False, timeout) from None
    if 400 <= response.status_code < 500:
        try:
            body = response.json()
            code, message = int(body["code"]), str(body["msg"])
        except (ValueError, KeyError, TypeError):
            code, message = 0, response.text[:200]
        raise _client_error(ClientError(response.status_code, code, message, response.headers), False)
    if response.status_code >= 500:
        raise RetryableError(f"Binance answered HTTP {response.status_code}", code=str(response.status_code))
    try:
        rows = response.json()
    except ValueError:
        raise RetryableError("Binance answered klines with something that is not JSON", code="klines") from None
    return parse_klines(symbol, rows, start_ms=start_ms, end_ms=end_ms)


def _income_record(row: dict[str, Any]) -> IncomeRecord:
    income_type = str(row.get("incomeType", ""))
    kind = INCOME_KINDS.get(income_type, IncomeKind.OTHER)
    info = str(row.get("info") or "")
    if kind is IncomeKind.OTHER:
        # Keep Binance's own name (TRANSFER, INSURANCE_CLEAR…): OTHER alone would lose it.
        info = income_type if info in ("", income_type) else f"{income_type}: {info}"
    return IncomeRecord(
        tran_id=str(row["tranId"]),
        kind=kind,
        symbol=str(row.get("symbol") or ""),
        amount=Decimal(str(row["income"])),
        asset=str(row.get("asset") or "USDT"),
        time=_from_ms(row["time"]),
        trade_id=str(row.get("tradeId") or ""),
        info=info,
    )


def _fill(row: dict[str, Any]) -> Fill:
    return Fill(
        trade_id=str(row["id"]),
        order_id=str(row["orderId"]),
        symbol=row["symbol"],
        side=row["side"],
        price=Decimal(str(row["price"])),
        qty=Decimal(str(row["qty"])),
        # Binance's documents show the commission both signed and unsigned: a cost either way.
        commission=abs(Decimal(str(row.get("commission") or "0"))),
        commission_asset=str(row.get("commissionAsset") or ""),
        realized_pnl=Decimal(str(row.get("realizedPnl") or "0")),
        time=_from_ms(row["time"]),
    )


def _algo_amounts(request: ProtectiveRequest, rules: SymbolRules) -> dict[str, str]:
    """A stop-loss or take-profit closes the whole position at its trigger (closePosition), a ladder's
    level its quantity. A trailing stop cannot close the position (closePosition is for STOP_MARKET /
    TAKE_PROFIT_MARKET only): it carries the quantity, its callbackRate and, when it waits for one, its
    activatePrice. A quantity goes reduce-only in one-way mode (in hedge mode its positionSide says it
    closes, and reduceOnly is refused)."""
    trigger = format(request.trigger.quantize(rules.tick_size), "f")
    if request.quantity is None:
        return {"triggerPrice": trigger, "closePosition": "true"}
    amounts = {"quantity": rules.format_quantity(request.quantity)}
    if request.kind != "trailing":
        amounts["triggerPrice"] = trigger
    else:
        assert request.callback is not None
        amounts["callbackRate"] = format(request.callback.normalize(), "f")
        if request.trigger > 0:
            amounts["activatePrice"] = trigger
    if request.position_side == "BOTH":
        amounts["reduceOnly"] = "true"
    return amounts
