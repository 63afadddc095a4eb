"""The exchange behind a small interface (base.py), one module per adapter.

`get_exchange()` hands out one adapter per process: the Binance adapter keeps one HTTP session
(keep-alive) and its caches of symbol rules, position mode and clock offset for the process's life.
"""

from functools import cache

from django.conf import settings

from trading.exchange.base import (
    AccountChange,
    AccountUpdate,
    Balance,
    CheckState,
    Exchange,
    ExchangeError,
    Fill,
    FillCause,
    IncomeKind,
    IncomeRecord,
    LeverageUpdate,
    NothingToReduce,
    OrderRequest,
    OrderResult,
    OrderState,
    OrderUpdate,
    OutcomeUnknown,
    PermanentError,
    PositionInfo,
    PrecisionRejected,
    ProtectiveRequest,
    ProtectiveState,
    ProtectiveStatus,
    ProtectiveUpdate,
    RateLimits,
    RateUsage,
    RetryableError,
    SetupLine,
    StreamAlive,
    StreamConnected,
    StreamDown,
    SymbolRules,
    SymbolSettings,
    UnknownSymbol,
    UserEvent,
    UserStream,
    WouldTake,
)

__all__ = [
    "AccountChange",
    "AccountUpdate",
    "Balance",
    "CheckState",
    "Exchange",
    "ExchangeError",
    "Fill",
    "FillCause",
    "IncomeKind",
    "IncomeRecord",
    "LeverageUpdate",
    "NothingToReduce",
    "OrderRequest",
    "OrderResult",
    "OrderState",
    "OrderUpdate",
    "OutcomeUnknown",
    "PermanentError",
    "PositionInfo",
    "PrecisionRejected",
    "WouldTake",
    "ProtectiveRequest",
    "ProtectiveState",
    "ProtectiveStatus",
    "ProtectiveUpdate",
    "RateLimits",
    "RateUsage",
    "RetryableError",
    "SetupLine",
    "StreamAlive",
    "StreamConnected",
    "StreamDown",
    "SymbolRules",
    "SymbolSettings",
    "UnknownSymbol",
    "UserEvent",
    "UserStream",
    "get_exchange",
    "reset_exchange",
]


@cache
def get_exchange() -> Exchange:
    if settings.EXCHANGE == "binance":
        from trading.exchange.binance import BinanceExchange

        return BinanceExchange(
            api_key=settings.BINANCE_API_KEY,
            testnet=settings.BINANCE_USE_TESTNET,
            api_secret=settings.BINANCE_API_SECRET,
            base_url=settings.BINANCE_BASE_URL,
            timeout=settings.BINANCE_TIMEOUT,
            recv_window=settings.BINANCE_RECV_WINDOW,
            stream_url=settings.BINANCE_STREAM_URL,
            connections=settings.WORKER_THREADS,
        )
    from trading.exchange.paper import PaperExchange

    return PaperExchange(starting_balance=settings.PAPER_BALANCE, taker_fee=settings.PAPER_TAKER_FEE,
                         hedge_mode=settings.PAPER_HEDGE_MODE)


def reset_exchange() -> None:
    """Forget the process's adapter (tests, or after settings change)."""
    get_exchange.cache_clear()
