"""The exchange behind a small interface (base.py), one module per adapter.

`get_exchange()` hands out one adapter per process: the Binance adapter keeps one HTTP session
(keep-alive) and its caches of symbol rules, position mode and clock offset for the process's life.
`exchange_for(account)` does the same for an account of the registry (trading.models.Account).
"""

import threading
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

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

if TYPE_CHECKING:
    from trading.models import Account

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
    "exchange_for",
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


def exchange_for(account: "Account") -> Exchange:
    """The adapter of `account`: the environment's for `default`, else one built from the account's own
    (decrypted) keys, kept per process until the account changes. An unsaved account gets a fresh one
    (a key being verified before it is stored)."""
    if account.is_default:
        return get_exchange()
    if account.exchange != "binance":
        raise ValueError(f"account {account.name!r}: paper accounts other than `default` are not supported yet")
    if account.pk is None:
        return _binance_for(account)
    key = (account.pk, account.updated_at)
    with _accounts_lock:
        exchange = _accounts.get(account.pk)
        if exchange is None or exchange[0] != key:
            _accounts[account.pk] = exchange = (key, _binance_for(account))
    return exchange[1]


@sensitive_variables()  # an error report (DEBUG's page, a logged traceback) shows none of its locals
def _binance_for(account: "Account") -> Exchange:
    from trading import keyring
    from trading.exchange.binance import BinanceExchange

    base_url, stream_url = account.binance_urls
    return BinanceExchange(
        api_key=keyring.decrypt(account.api_key), api_secret=keyring.decrypt(account.api_secret),
        testnet=account.testnet, base_url=base_url, stream_url=stream_url, timeout=settings.BINANCE_TIMEOUT,
        recv_window=settings.BINANCE_RECV_WINDOW, connections=settings.WORKER_THREADS,
    )


# The adapters of the registry's accounts: pk → ((pk, updated_at), adapter); a change of keys or flag
# (a new updated_at) builds a new one in its place.
_accounts: dict[int, tuple[tuple[int, datetime | None], Exchange]] = {}
_accounts_lock = threading.Lock()


def reset_exchange() -> None:
    """Forget the process's adapters (tests, or after settings change)."""
    get_exchange.cache_clear()
    with _accounts_lock:
        _accounts.clear()
