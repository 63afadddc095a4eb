"""Symbol rules from Binance's exchangeInfo: parsing, and the bundled snapshot the paper exchange uses.

Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information
"""

import json
from decimal import Decimal
from functools import cache
from pathlib import Path

from trading.exchange.base import SymbolRules, UnknownSymbol

SNAPSHOT = Path(__file__).parent / "data" / "exchange_info.json"


def parse_symbol(entry: dict) -> SymbolRules:
    """One `symbols[]` entry of exchangeInfo → SymbolRules. Market orders obey MARKET_LOT_SIZE's
    maximum, which is far below LOT_SIZE's (120 BTC against 1000 on BTCUSDT)."""
    filters = {item["filterType"]: item for item in entry["filters"]}
    lot = filters["LOT_SIZE"]
    market_lot = filters.get("MARKET_LOT_SIZE", lot)
    return SymbolRules(
        symbol=entry["symbol"],
        step_size=Decimal(lot["stepSize"]).normalize(),
        min_qty=Decimal(lot["minQty"]),
        max_qty=Decimal(market_lot["maxQty"]),
        tick_size=Decimal(filters["PRICE_FILTER"]["tickSize"]).normalize(),
        min_notional=Decimal(filters.get("MIN_NOTIONAL", {}).get("notional", "0")),
    )


def parse_exchange_info(data: dict) -> dict[str, SymbolRules]:
    """Every perpetual that is trading, by symbol."""
    return {
        entry["symbol"]: parse_symbol(entry)
        for entry in data["symbols"]
        if entry.get("status", "TRADING") == "TRADING" and entry.get("contractType", "PERPETUAL") == "PERPETUAL"
    }


@cache
def bundled_rules() -> dict[str, SymbolRules]:
    return parse_exchange_info(json.loads(SNAPSHOT.read_text()))


def bundled_rules_for(symbol: str) -> SymbolRules:
    try:
        return bundled_rules()[symbol]
    except KeyError:
        raise UnknownSymbol(f"{symbol} is not a listed USDⓈ-M perpetual", code="-1121") from None
