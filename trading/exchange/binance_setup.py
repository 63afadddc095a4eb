"""Is the Binance account set up as Alsa Trade expects? The lines of `manage.py exchange_check` and of
/health's staff detail, each in plain words with what to do when it does not hold.

Reads only: the clock, one signed account read (accountConfig: may it trade, position mode,
multi-assets mode), the API trading locks, and exchangeInfo for the symbols. About 17 request weight.
Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Account-Config
"""

from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from trading.exchange.base import CheckState, ExchangeError, PermanentError, SetupLine

if TYPE_CHECKING:
    from trading.exchange.binance import BinanceExchange

OK, WARNING, FAILED = CheckState.OK, CheckState.WARNING, CheckState.FAILED
CLOCK_LIMIT_MS = 1000  # Binance refuses a request stamped 1 s ahead of its clock (-1021)


def setup_lines(exchange: "BinanceExchange", symbols: Collection[str]) -> list[SetupLine]:
    try:
        offset_ms = exchange.measure_clock()
    except ExchangeError as error:
        return [SetupLine("connection", FAILED, f"Binance could not be reached at {exchange.client.base_url}: "
                                                f"{error.reason}. Check this server's network and BINANCE_BASE_URL.")]
    lines = [clock_line(offset_ms), *_account_lines(exchange)]
    return lines + _symbol_lines(exchange, symbols)


def clock_line(offset_ms: int) -> SetupLine:
    """Signed requests carry local time + the measured offset, so an offset is corrected; a large one
    still says the server's clock is not kept in time."""
    where = "ahead of" if offset_ms < 0 else "behind"
    said = f"this server's clock is {abs(offset_ms)} ms {where} Binance's"
    if abs(offset_ms) < CLOCK_LIMIT_MS:
        return SetupLine("clock", OK, f"{said} (corrected on every signed request)")
    return SetupLine("clock", WARNING, f"{said}: corrected on every signed request, but keep the clock in time "
                                       "(NTP: `timedatectl set-ntp true`)")


def _account_lines(exchange: "BinanceExchange") -> list[SetupLine]:
    try:
        config = exchange._signed(exchange.client.futures_account_configuration)
    except ExchangeError as error:
        return [SetupLine("API key", FAILED, f"a signed read failed: {error.reason}")]
    return [
        SetupLine("API key", OK, "a signed read was accepted: the key, its secret and this server's address are fine"),
        _trading_line(exchange, bool(config.get("canTrade"))),
        _position_mode_line(bool(config.get("dualSidePosition"))),
        _multi_assets_line(bool(config.get("multiAssetsMargin"))),
    ]


def _trading_line(exchange: "BinanceExchange", can_trade: bool) -> SetupLine:
    if not can_trade:
        return SetupLine("trading", FAILED, "the account may not trade USDⓈ-M futures (Binance says canTrade: false): "
                                            "look at the account's futures status in Binance, or ask its support")
    # Reference: .../account/rest-api/Futures-Trading-Quantitative-Rules-Indicators
    try:
        status = exchange._signed(exchange.client.api_trading_status)
    except PermanentError as error:
        return SetupLine("trading", WARNING, f"the account may trade, but its trading locks could not be read: {error.reason}")
    locks = _locks(status.get("indicators") or {})
    if locks:
        return SetupLine("trading", FAILED, f"Binance's trading rules lock {'; '.join(locks)}: no order goes out until then")
    return SetupLine("trading", OK, "the account may trade USDⓈ-M futures, and no trading rule locks it")


def _locks(indicators: dict[str, Any]) -> list[str]:
    said = []
    for where, rules in indicators.items():
        for rule in rules or []:
            if rule.get("isLocked"):
                until = rule.get("plannedRecoverTime")
                when = f" until {datetime.fromtimestamp(int(until) / 1000, tz=UTC):%Y-%m-%d %H:%M} UTC" if until else ""
                what = "the whole account" if where == "ACCOUNT" else where
                said.append(f"{what}{when} (indicator {rule.get('indicator', '?')})")
    return said


def _position_mode_line(hedge: bool) -> SetupLine:
    if not hedge:
        return SetupLine("position mode", OK, "one-way, as Alsa Trade trades")
    return SetupLine("position mode", OK, "hedge mode, supported: a buy opens or adds the long and a sell the short, "
                                          "each side closed on its own (close_long, close_short; close closes both)")


def _multi_assets_line(multi_assets: bool) -> SetupLine:
    if not multi_assets:
        return SetupLine("multi-assets mode", OK, "off: margin is USDT, as Alsa Trade sizes orders")
    return SetupLine("multi-assets mode", WARNING, "on: margin is shared across assets and isolated margin is refused, while "
                                                   "Alsa Trade sizes from USDT equity; switch to Single-Asset Mode in "
                                                   "Binance → Futures → Preferences unless you mean it")


def _symbol_lines(exchange: "BinanceExchange", symbols: Collection[str]) -> list[SetupLine]:
    if not symbols:
        return [SetupLine("symbols", OK, "no enabled strategy lists a symbol: none to check")]
    try:
        info = exchange._call(exchange.client.exchange_info)
    except ExchangeError as error:
        return [SetupLine("symbols", FAILED, f"the list of symbols could not be read: {error.reason}; try again")]
    listed = {entry["symbol"]: entry for entry in info.get("symbols", [])}
    return [_symbol_line(symbol, listed.get(symbol)) for symbol in sorted(symbols)]


def _symbol_line(symbol: str, entry: dict[str, Any] | None) -> SetupLine:
    if entry is None:
        return SetupLine(symbol, FAILED, f"{symbol} is not listed on Binance USDⓈ-M futures: correct or remove it "
                                         "in the strategy's products")
    status, contract = entry.get("status", "?"), entry.get("contractType", "?")
    if contract != "PERPETUAL":
        return SetupLine(symbol, FAILED, f"{symbol} is a {contract} contract, not a perpetual: Alsa Trade trades "
                                         "perpetuals only; remove it from the strategy's products")
    if status != "TRADING":
        return SetupLine(symbol, FAILED, f"{symbol} is {status}, not TRADING: Binance takes no order for it now "
                                         "(delisting, settlement or suspension); see Binance's announcements")
    return SetupLine(symbol, OK, f"{symbol}: a perpetual, trading")
