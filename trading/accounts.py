"""The account registry's actions, shared by the API (trading/api.py), the accounts page and the admin:
add an account once the exchange has accepted its key, read its modes, halt or resume it.

A key is verified before it is stored: a signed read of the position mode and the multi-assets mode,
which the row then keeps with the time read. The `default` account is the environment's: it is never
added here, and its switch binds the strategies (trading/halt.py opening_refusal).
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.events import notify
from trading import keyring
from trading.exchange import Exchange, ExchangeError, RetryableError, exchange_for
from trading.halt import positions_flatten
from trading.models import Account
from trading.models.account import DEFAULT

log = logging.getLogger(__name__)


class AccountError(Exception):
    """Refused, with the reason in words: nothing was stored or changed."""


class ExchangeUnreachable(AccountError):
    """The exchange could not be asked (network, rate limit): try again; nothing was stored."""


@dataclass(frozen=True)
class AccountCheck:
    """What the exchange said of the account's set-up."""

    position_mode: str  # Account.PositionMode: one_way or hedge
    multi_assets: bool | None  # None: the exchange has no such mode (paper)
    read_at: datetime


@dataclass(frozen=True)
class AccountHalted:
    account: Account
    flattening: list[int]  # the close signals queued by `flatten`


def account_check(account: Account) -> AccountCheck:
    """Ask the exchange for the account's modes, with its key; a saved account keeps them. A key the
    exchange refuses raises AccountError with Binance's own code and words."""
    try:
        exchange = exchange_for(account)
        hedge = exchange.is_hedge_mode()
        multi_assets = _multi_assets(exchange)
    except keyring.KeyringError as error:
        raise AccountError(str(error)) from None
    except RetryableError as error:
        raise ExchangeUnreachable(f"the exchange ({account.environment}) could not be asked: {error.reason}; "
                                  "nothing was changed, try again") from None
    except ExchangeError as error:
        raise AccountError(f"the exchange ({account.environment}) refused the key: {_words(account, error.reason)}") from None
    check = AccountCheck(position_mode=Account.PositionMode.HEDGE if hedge else Account.PositionMode.ONE_WAY,
                         multi_assets=multi_assets, read_at=timezone.now())
    account.position_mode, account.multi_assets, account.modes_read_at = check.position_mode, check.multi_assets, check.read_at
    if account.pk is not None:
        # Not a change of the account (no history row, no new adapter): what the exchange says now.
        Account.objects.filter(pk=account.pk).update(position_mode=check.position_mode, multi_assets=check.multi_assets,
                                                     modes_read_at=check.read_at)
    return check


def account_create(*, name: str, exchange: str, testnet: bool, api_key: str, api_secret: str, by: str) -> Account:
    """Store a new account once the exchange has accepted its key (its modes read on the way)."""
    account = account_verified(name=name, exchange=exchange, testnet=testnet, api_key=api_key, api_secret=api_secret,
                               by=by)
    try:
        with transaction.atomic():
            account.save()  # and its history row, without the keys
    except IntegrityError:  # the same name added by someone else meanwhile
        raise AccountError(f"an account named {name!r} exists already") from None
    log.info("account %s added by %s: %s, %s", name, by, exchange, account.environment)
    return account


def account_verified(*, name: str, exchange: str, testnet: bool, api_key: str, api_secret: str, by: str) -> Account:
    """A new account, not saved yet, whose key the exchange has accepted (the admin saves it itself)."""
    if name == DEFAULT:
        raise AccountError("`default` is the environment's account (EXCHANGE, BINANCE_API_KEY/SECRET): it exists "
                           "already and takes its keys from the environment")
    if exchange == Account.Exchange.PAPER:
        raise AccountError("paper accounts other than `default` are not supported yet")
    if Account.objects.filter(name=name).exists():
        raise AccountError(f"an account named {name!r} exists already")
    account = Account(name=name, exchange=exchange, testnet=testnet, changed_by=by[:150])
    if settings.DEBUG and account.environment == "production":
        # As settings.py refuses EXCHANGE=binance to production with DEBUG=1: debug pages show tracebacks.
        raise AccountError("DEBUG=1 with a production account: real money in debug mode. Set DEBUG=0, or add a "
                           "testnet account")
    _keys_set(account, api_key, api_secret)
    account_check(account)
    return account


def account_keys_verified(account: Account, *, api_key: str, api_secret: str) -> Account:
    """A copy of `account`, not saved, holding new keys the exchange has accepted (and the modes read)."""
    if account.is_default:
        raise AccountError("the `default` account's keys are BINANCE_API_KEY/SECRET, in the environment")
    trial = Account(name=account.name, exchange=account.exchange, testnet=account.testnet)
    _keys_set(trial, api_key, api_secret)
    account_check(trial)
    return trial


def account_keys_replace(account: Account, verified: Account, *, by: str) -> Account:
    """Store the keys `account_keys_verified` accepted. A new updated_at: the process's adapter for the
    account is built again, with them."""
    for field in ("api_key", "api_secret", "key_hint", "position_mode", "multi_assets", "modes_read_at"):
        setattr(account, field, getattr(verified, field))
    account.changed_by = by[:150]
    account.save()  # and its history row, without the keys
    log.info("account %s: new API key set by %s", account.name, by)
    return account


def _keys_set(account: Account, api_key: str, api_secret: str) -> None:
    try:
        account.api_key, account.api_secret = keyring.encrypt(api_key), keyring.encrypt(api_secret)
    except keyring.KeyringError as error:
        raise AccountError(str(error)) from None
    account.key_hint = keyring.hint(api_key)


def account_halt(account: Account, *, halted: bool, reason: str = "", flatten: bool = False, by: str = "",
                 address: str | None = None) -> AccountHalted:
    """Halt or resume `account`, as `by` from `address`; `flatten` closes every open position, which only
    the `default` account has (the others do not trade yet). The row is locked from read to write."""
    if flatten and not account.is_default:
        raise AccountError(f"account {account.name!r} does not trade yet (strategies trade `default`): "
                           "it has no positions of ours to close")
    reason = reason[:255] if halted else ""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account.pk)
        was = account.halted
        account.halted, account.halted_reason, account.changed_by = halted, reason, by[:150]
        account.save()  # and its history row
        if halted:
            log.warning("account %s halted by %s from %s: %s", account.name, by, address or "-",
                        " ".join(reason.split()) or "(none given)")
        else:
            log.info("account %s resumed by %s from %s", account.name, by, address or "-")
        if halted != was:
            what = "opening orders are refused" if account.is_default else "it does not trade yet; the halt is kept"
            notify("halt", f"Account {account.name} halted by {by}: {what}" + (f" ({reason})" if reason else "")
                   if halted else f"Account {account.name} resumed by {by}")
    flattening = positions_flatten(by=by) if flatten else []
    return AccountHalted(account=account, flattening=flattening)


def accounts_listed() -> list[Account]:
    """Every account, `default` first."""
    Account.create_default_if_missing()
    return sorted(Account.objects.all(), key=lambda account: (not account.is_default, account.name))


def _multi_assets(exchange: Exchange) -> bool | None:
    from trading.exchange.binance import BinanceExchange

    if not isinstance(exchange, BinanceExchange):
        return None  # the paper exchange has one asset, USDT
    # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Current-Multi-Assets-Mode
    return bool(exchange._signed(exchange.client.get_multi_asset_mode)["multiAssetsMargin"])


def _words(account: Account, reason: str) -> str:
    """The adapter names the environment's settings; another account's keys were typed in a form."""
    if account.is_default:
        return reason
    return reason.replace("BINANCE_API_SECRET", "the API secret").replace("BINANCE_API_KEY", "the API key")
