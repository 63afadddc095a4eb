"""The exchange interface: what the engine and services may ask of any exchange adapter.

Adapters (binance.py, paper.py) are the only code that knows an exchange's wire format, error codes
and order statuses. They speak Decimal and these dataclasses, and raise only the ExchangeError
family below.
"""

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from enum import StrEnum
from threading import Event
from typing import Any, Protocol


@dataclass(frozen=True)
class SymbolRules:
    """Trading filters of one symbol (exchangeInfo: LOT_SIZE/MARKET_LOT_SIZE, PRICE_FILTER, MIN_NOTIONAL)."""

    symbol: str
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal  # for market orders (MARKET_LOT_SIZE)
    tick_size: Decimal
    min_notional: Decimal

    def round_quantity(self, quantity: Decimal) -> Decimal:
        """Round *down* to the step: never trade more than was asked for. Computed with enough
        precision that no quantity, however many digits, is rounded up by the division."""
        with localcontext() as exact:
            exact.prec = 200
            steps = (quantity / self.step_size).to_integral_value(rounding=ROUND_DOWN)
            return (steps * self.step_size).quantize(self.step_size)

    def round_price(self, price: Decimal, side: str) -> Decimal:
        """A limit price on the tick, never worse for the side than asked: a buy's rounded down, a
        sell's up (a limit order must never pay more, or sell for less, than its price said)."""
        with localcontext() as exact:
            exact.prec = 200
            rounding = ROUND_DOWN if side == "BUY" else ROUND_UP
            ticks = (price / self.tick_size).to_integral_value(rounding=rounding)
            return (ticks * self.tick_size).quantize(self.tick_size)

    def format_price(self, price: Decimal) -> str:
        return format(price.quantize(self.tick_size), "f")

    def format_quantity(self, quantity: Decimal) -> str:
        """The quantity as the exchange accepts it: exactly the step's decimals, no exponent
        (a quantity read back from a 10-decimal column is "0.1110000000"; -1111 refuses that)."""
        return format(self.round_quantity(quantity), "f")

    def violation(self, quantity: Decimal, price: Decimal | None, *, reduce_only: bool = False) -> str | None:
        """The rule an order of `quantity` at about `price` would break, in plain words; None if none."""
        if quantity < self.min_qty:
            return f"quantity {quantity} is below {self.symbol}'s minimum of {self.min_qty}"
        if quantity > self.max_qty:
            return f"quantity {quantity} is above {self.symbol}'s market-order maximum of {self.max_qty}"
        # Binance exempts reduce-only orders from the minimum notional (a small remainder can close).
        if price is not None and not reduce_only and quantity * price < self.min_notional:
            notional = (quantity * price).quantize(Decimal("0.01"))
            return (
                f"order value {notional} USDT is below {self.symbol}'s minimum of {self.min_notional} USDT "
                f"(short by {(self.min_notional - notional).quantize(Decimal('0.01'))} USDT)"
            )
        return None


class OrderState(StrEnum):
    """An order's state at the exchange, in our words (adapters map theirs onto these)."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_open(self) -> bool:
        return self in (OrderState.NEW, OrderState.PARTIALLY_FILLED)

    @property
    def is_final(self) -> bool:
        return not self.is_open


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str  # "BUY" or "SELL"
    quantity: Decimal
    client_order_id: str  # ^[.A-Z:/a-z0-9_-]{1,36}$
    reduce_only: bool = False
    position_side: str = "BOTH"  # LONG/SHORT in hedge mode
    price_hint: Decimal | None = None  # the price the order was sized from: the paper exchange fills at it
    limit_price: Decimal | None = None  # a limit order's price, on the tick; None: a market order
    post_only: bool = False  # a limit order that is refused rather than take liquidity (Binance: GTX)

    @property
    def is_limit(self) -> bool:
        return self.limit_price is not None


@dataclass(frozen=True)
class OrderResult:
    client_order_id: str
    exchange_order_id: str
    state: OrderState
    executed_qty: Decimal
    avg_price: Decimal | None
    commission: Decimal | None = None
    realized_pnl: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None  # its last change (fill), on the exchange's clock


@dataclass(frozen=True)
class PositionInfo:
    symbol: str
    position_side: str
    amount: Decimal  # signed: positive long, negative short
    entry_price: Decimal
    unrealized_pnl: Decimal
    mark_price: Decimal | None = None
    updated_at: datetime | None = None  # when it last changed, on the exchange's clock: fills until then are in it
    leverage: int | None = None  # the symbol's leverage in force, when the adapter read it
    margin_type: str = ""  # cross, isolated; "" when not read


@dataclass(frozen=True)
class SymbolSettings:
    """Leverage and margin type as set on the account for one symbol (they can be changed in the
    exchange's own app at any time)."""

    symbol: str
    leverage: int
    margin_type: str  # cross, isolated


@dataclass(frozen=True)
class Balance:
    asset: str
    wallet_balance: Decimal
    available_balance: Decimal
    equity: Decimal  # wallet balance + unrealized P&L
    unrealized_pnl: Decimal


class IncomeKind(StrEnum):
    """A ledger line's kind, in our words (analytics.models.LedgerEntry.Kind holds the same values)."""

    REALIZED_PNL = "REALIZED_PNL"
    COMMISSION = "COMMISSION"
    FUNDING_FEE = "FUNDING_FEE"
    OTHER = "OTHER"


@dataclass(frozen=True)
class IncomeRecord:
    """One line of the exchange's ledger of money (Binance's income history)."""

    tran_id: str  # unique per kind for one account
    kind: IncomeKind
    symbol: str  # "" when the line concerns no symbol (a transfer)
    amount: Decimal  # signed: positive is money in
    asset: str
    time: datetime  # UTC
    trade_id: str = ""  # the trade that caused it, if any
    info: str = ""  # the exchange's note; for OTHER, its own name for the kind


@dataclass(frozen=True)
class Fill:
    """One trade that filled (part of) an order."""

    trade_id: str
    order_id: str  # the exchange's order id (OrderResult.exchange_order_id)
    symbol: str
    side: str  # "BUY" or "SELL"
    price: Decimal
    qty: Decimal
    commission: Decimal  # a cost: positive is money out
    commission_asset: str
    realized_pnl: Decimal
    time: datetime  # UTC


@dataclass(frozen=True)
class ProtectiveRequest:
    """A stop-loss or take-profit that closes the whole position when the mark price reaches `trigger`;
    or a trailing stop that closes `quantity` once the price falls back `callback` % from its best since
    `trigger` (its activation price; 0: at once)."""

    symbol: str
    kind: str  # stop_loss, take_profit, trailing
    side: str  # the closing side: SELL protects a long
    trigger: Decimal
    client_id: str  # ^[.A-Z:/a-z0-9_-]{1,36}$, derived from the signal: a retry cannot place two
    position_side: str = "BOTH"
    quantity: Decimal | None = None  # None: the whole position (closePosition)
    callback: Decimal | None = None  # a trailing stop's callback rate, %


@dataclass(frozen=True)
class ProtectiveState:
    """A protective order resting at the exchange."""

    client_id: str
    exchange_id: str
    symbol: str
    kind: str
    trigger: Decimal


@dataclass(frozen=True)
class RateLimits:
    """What the exchange lets an account send: at most `count` orders in any `seconds`, for each
    (count, seconds) in `orders`; and `weight_per_minute` of request weight (None: no such limit)."""

    orders: tuple[tuple[int, float], ...] = ()
    weight_per_minute: int | None = None


@dataclass(frozen=True)
class RateUsage:
    """What the exchange last said it had counted, from its answers to this process. `orders`: orders
    in each window of RateLimits.orders, as of `orders_at` (empty: it has not said); `weight`: the
    request weight used in its current minute, which ends at `weight_until`. Times are epoch seconds
    on this host's clock."""

    orders: tuple[int, ...] = ()
    orders_at: float = 0.0
    weight: int = 0
    weight_until: float = 0.0


@dataclass(frozen=True)
class Kline:
    """One minute of a symbol's market (a 1-minute candlestick): its open time (UTC, on the minute) and
    the prices it opened, reached and closed at; `volume` in the base asset."""

    symbol: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


KLINES_PAGE_MAX = 1500  # the most klines one get_klines call answers


def klines_weight(limit: int) -> int:
    """The request weight one get_klines page of `limit` costs against `request_weight()`'s budget.
    Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Kline-Candlestick-Data
    (the paper exchange reads its klines from Binance too)."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


# --- the account's own events (a user data stream) ------------------------------------------------
class FillCause(StrEnum):
    """Why an order the account did not send through us exists (adapters read it off the order)."""

    ORDER = "order"  # an ordinary order: ours, or one placed by hand in the exchange's app
    LIQUIDATION = "liquidation"
    AUTO_DELEVERAGE = "adl"
    SETTLEMENT = "settlement"  # a delisting or delivery closed the position


@dataclass(frozen=True)
class OrderUpdate:
    """An order changed at the exchange: placed, (partly) filled, cancelled. Quantities are the
    order's cumulative figures, so the same update applied twice is the same state."""

    symbol: str
    client_order_id: str
    exchange_order_id: str
    side: str  # "BUY" or "SELL"
    position_side: str
    order_type: str
    quantity: Decimal  # as ordered
    state: OrderState
    executed_qty: Decimal  # cumulative
    avg_price: Decimal | None
    last_qty: Decimal  # this event's fill, 0 for a status change
    last_price: Decimal | None
    commission: Decimal  # this event's fill's commission (a cost)
    commission_asset: str
    realized_pnl: Decimal  # this event's fill's realized P&L
    trade_id: str
    reduce_only: bool
    cause: FillCause
    time: datetime  # UTC, the matching engine's

    def as_result(self) -> OrderResult:
        return OrderResult(client_order_id=self.client_order_id, exchange_order_id=self.exchange_order_id,
                           state=self.state, executed_qty=self.executed_qty, avg_price=self.avg_price,
                           updated_at=self.time)


class ProtectiveStatus(StrEnum):
    RESTING = "resting"
    TRIGGERED = "triggered"  # handed to the matching engine as an order (`order_id`)
    FINISHED = "finished"  # that order filled (or was cancelled) there
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ProtectiveUpdate:
    """A protective order changed at the exchange (Binance: ALGO_UPDATE)."""

    symbol: str
    client_id: str
    status: ProtectiveStatus
    order_id: str  # the order it became once triggered; "" before
    time: datetime


class AccountChange(StrEnum):
    """Why balances or positions changed."""

    TRADE = "trade"  # an order filled: an OrderUpdate tells the same story, fill by fill
    FUNDING = "funding"
    TRANSFER = "transfer"  # deposits, withdrawals, transfers between wallets
    OTHER = "other"  # margin type changes, insurance clearing, adjustments…


@dataclass(frozen=True)
class AccountUpdate:
    change: AccountChange
    positions: tuple[PositionInfo, ...]  # the positions that changed, as they now stand
    balances: tuple[tuple[str, Decimal], ...]  # (asset, wallet balance) that changed
    time: datetime


@dataclass(frozen=True)
class LeverageUpdate:
    """A symbol's leverage changed at the exchange: by us, or by hand in the exchange's app."""

    symbol: str
    leverage: int
    time: datetime


@dataclass(frozen=True)
class StreamConnected:
    """The stream is (again) open: events from before now may have been missed."""

    time: datetime


@dataclass(frozen=True)
class StreamAlive:
    """The stream is open and quiet: said every few seconds, so a watcher can tell it is alive."""

    time: datetime


@dataclass(frozen=True)
class StreamDown:
    """The stream closed or failed; it is being reopened."""

    reason: str
    time: datetime


UserEvent = (OrderUpdate | ProtectiveUpdate | AccountUpdate | LeverageUpdate | StreamConnected | StreamAlive
             | StreamDown)


# --- is the account set up as Alsa Trade expects (manage.py exchange_check, /health) -----------------
class CheckState(StrEnum):
    OK = "ok"
    WARNING = "warning"  # works, but not as intended: said, not failed
    FAILED = "failed"  # orders will be refused, or go out wrong, until someone acts


@dataclass(frozen=True)
class SetupLine:
    """One check of the account's setup, in plain words; when not OK, the words say what to do."""

    name: str
    state: CheckState
    text: str


class UserStream(Protocol):
    """The account's live events, reconnecting by itself: yields typed events until `stop` is set."""

    def events(self, stop: Event) -> Iterator[UserEvent]: ...


# --- errors ------------------------------------------------------------------------------------------
class ExchangeError(Exception):
    """Base of every error an adapter raises. `reason` is for a trader; `code` is the exchange's own,
    kept for the record (services never compare against it)."""

    def __init__(self, reason: str, *, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retry_after = retry_after


class PermanentError(ExchangeError):
    """The exchange refused and will refuse again (bad quantity, no margin, bad key): never retry."""


class NothingToReduce(PermanentError):
    """A reduce-only order found no position to reduce: our mirror of the position was out of date."""


class PrecisionRejected(PermanentError):
    """A quantity or price had more decimals or was smaller than the symbol allows."""


class WouldTake(PermanentError):
    """A post-only order would have taken liquidity at once: the exchange refused it, nothing rests."""


class UnknownSymbol(PermanentError):
    """The exchange does not trade this symbol."""


class RetryableError(ExchangeError):
    """Nothing happened at the exchange (rate limit, clock drift, 5xx before sending): safe to retry."""


class OutcomeUnknown(ExchangeError):
    """The order may or may not exist (timeout or 503 after sending, or a lookup too early to be
    conclusive): look it up again, after `retry_after` seconds, before sending anything."""


class Exchange(Protocol):
    name: str  # paper, binance

    @property
    def account_id(self) -> str:
        """Names the account (testnet and production keys are different accounts); no secret in it."""
        ...

    def order_stamp(self) -> int:
        """The timestamp (exchange clock, ms) that an order sent now will carry. The caller records
        it before sending: whether an order that was not found can still appear is judged from it."""
        ...

    def place_market_order(self, order: OrderRequest, *, stamp: int) -> OrderResult:
        """Raises PermanentError (refused), RetryableError (nothing happened) or OutcomeUnknown."""
        ...

    def place_limit_order(self, order: OrderRequest, *, stamp: int) -> OrderResult:
        """A limit order at `order.limit_price` (on the tick), good till cancelled, or post-only
        (`order.post_only`: WouldTake when it would take at once). Its answer may say it rests (NEW)
        or filled in part. Raises as place_market_order does."""
        ...

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """Take a resting order off the book; its final word (CANCELED with what filled before, or
        FILLED if it filled first). None when the exchange does not know it."""
        ...

    def get_order(self, symbol: str, client_order_id: str, *, stamp: int | None) -> OrderResult | None:
        """The exchange's word on an order sent with `stamp`. None only when it is conclusively
        absent: it is not there and a request with that stamp can no longer be accepted; until then
        OutcomeUnknown with the seconds to wait."""
        ...

    def set_leverage(self, symbol: str, leverage: int) -> None: ...

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        """margin_type is "cross" or "isolated"; already set is success."""
        ...

    def is_hedge_mode(self) -> bool: ...

    def get_symbol_settings(self, symbols: Collection[str]) -> dict[str, SymbolSettings]:
        """Leverage and margin type as set at the exchange now, by symbol (a symbol the exchange does
        not report is left out)."""
        ...

    def check_setup(self, symbols: Collection[str]) -> list[SetupLine]:
        """A line per thing that must hold for Alsa Trade to trade these symbols on this account: the
        key, the permission to trade, position and multi-assets modes, the clock, each symbol."""
        ...

    def get_balance(self) -> Balance: ...

    def get_positions(self) -> list[PositionInfo]:
        """Open positions only."""
        ...

    def get_symbol_rules(self, symbol: str) -> SymbolRules:
        """Cached; raises UnknownSymbol for a symbol the exchange does not list."""
        ...

    def tradable_symbols(self) -> frozenset[str]:
        """Every USDⓈ-M perpetual the exchange trades now (cached like the symbol rules)."""
        ...

    def get_mark_price(self, symbol: str) -> Decimal: ...

    def server_time_ms(self) -> int: ...

    def get_income(self, *, start_ms: int | None, limit: int) -> list[IncomeRecord]:
        """One page of the ledger, oldest first, from `start_ms` (inclusive; None: as far back as the
        exchange keeps) — at most `limit` lines."""
        ...

    def get_fills(self, symbol: str, *, order_id: str) -> list[Fill]:
        """The trades that filled the order with this exchange order id."""
        ...

    def place_protective(self, request: ProtectiveRequest) -> str:
        """Rest a protective order at the exchange; its exchange id. A client id already resting
        there counts as placed."""
        ...

    def cancel_protective(self, symbol: str, client_id: str) -> None:
        """Take a protective order off the exchange; one that is not there any more is fine."""
        ...

    def open_protective(self, symbol: str) -> list[ProtectiveState]:
        """The protective orders resting at the exchange for the symbol."""
        ...

    def get_klines(self, symbol: str, *, start_ms: int, end_ms: int, limit: int) -> list[Kline]:
        """One page of the symbol's 1-minute klines, oldest first: those opened from `start_ms` to
        `end_ms` (both inclusive, epoch ms), at most `limit` (≤ KLINES_PAGE_MAX; costs
        klines_weight(limit)). Raises UnknownSymbol, PermanentError (no price history to read),
        RetryableError."""
        ...

    def request_weight(self) -> tuple[int, int] | None:
        """(used, limit) of the exchange's request-weight budget this minute, as it last said; None
        when unknown or there is none."""
        ...

    def rate_limits(self) -> RateLimits:
        """The account's limits on orders and request weight (trading/order_budget.py keeps to them)."""
        ...

    def rate_usage(self) -> RateUsage:
        """What the exchange last said it had counted against those limits."""
        ...

    def user_stream(self) -> UserStream | None:
        """The account's live event stream; None when the exchange tells us everything in its
        answers (the paper exchange)."""
        ...
