"""The exchange interface: what the engine and services may ask of any exchange adapter.

Adapters (binance.py, paper.py) are the only code that knows an exchange's wire format. They speak
Decimal and these dataclasses, and raise only the ExchangeError family below.
"""

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Protocol


@dataclass(frozen=True)
class SymbolRules:
    """Trading filters of one symbol (exchangeInfo: LOT_SIZE/MARKET_LOT_SIZE, PRICE_FILTER, MIN_NOTIONAL)."""

    symbol: str
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    tick_size: Decimal
    min_notional: Decimal

    def round_quantity(self, quantity: Decimal) -> Decimal:
        """Round *down* to the step: never trade more than was asked for."""
        steps = (quantity / self.step_size).to_integral_value(rounding=ROUND_DOWN)
        return (steps * self.step_size).quantize(self.step_size)

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


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str  # "BUY" or "SELL"
    quantity: Decimal
    client_order_id: str  # ^[.A-Z:/a-z0-9_-]{1,36}$
    reduce_only: bool = False
    position_side: str = "BOTH"  # LONG/SHORT in hedge mode
    price_hint: Decimal | None = None  # the signal's price: the paper exchange fills at it


@dataclass(frozen=True)
class OrderResult:
    client_order_id: str
    exchange_order_id: str
    status: str  # Binance order status: NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED
    executed_qty: Decimal
    avg_price: Decimal | None
    commission: Decimal | None = None
    realized_pnl: Decimal | None = None
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PositionInfo:
    symbol: str
    position_side: str
    amount: Decimal  # signed: positive long, negative short
    entry_price: Decimal
    unrealized_pnl: Decimal
    mark_price: Decimal | None = None


@dataclass(frozen=True)
class Balance:
    asset: str
    wallet_balance: Decimal
    available_balance: Decimal
    equity: Decimal  # wallet balance + unrealized P&L
    unrealized_pnl: Decimal


class ExchangeError(Exception):
    """Base of every error an adapter raises. `reason` is for a trader; `code` is the exchange's."""

    kind = "unknown"

    def __init__(self, reason: str, *, code: str = "", retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retry_after = retry_after


class PermanentError(ExchangeError):
    """The exchange refused and will refuse again (bad quantity, no margin, bad key): never retry."""

    kind = "permanent"


class RetryableError(ExchangeError):
    """Nothing happened at the exchange (rate limit, clock drift, 5xx before sending): safe to retry."""

    kind = "retryable"


class OutcomeUnknownError(ExchangeError):
    """The order may or may not exist (timeout or 503 after sending): look it up before resending."""


class Exchange(Protocol):
    name: str

    def place_market_order(self, order: OrderRequest) -> OrderResult: ...

    def get_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        """None when the exchange has no order with that client id."""

    def set_leverage(self, symbol: str, leverage: int) -> None: ...

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        """margin_type is "cross" or "isolated"; already set is success."""

    def is_hedge_mode(self) -> bool: ...

    def get_balance(self) -> Balance: ...

    def get_positions(self) -> list[PositionInfo]:
        """Open positions only."""

    def get_symbol_rules(self, symbol: str) -> SymbolRules:
        """Cached; raises PermanentError for a symbol the exchange does not list."""

    def get_mark_price(self, symbol: str) -> Decimal: ...

    def server_time_ms(self) -> int: ...
