"""A strategy's products as the exchange names them. Pure: the tradable symbols are handed in.

Traders type what they see: `BTC`, `btc`, `BTCUSDT.P` (TradingView's perpetual ticker), `BINANCE:BTCUSDT.P`.
Each becomes the USDⓈ-M perpetual it means (`BTCUSDT`), or is refused with the nearest names that do
trade, so a strategy never silently filters every signal for a symbol that cannot match.
"""

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from trading.intake import normalise_symbol

QUOTE = "USDT"


@dataclass(frozen=True)
class Resolved:
    symbols: tuple[str, ...]  # the tradable symbols, in the order given, without duplicates
    unknown: tuple[str, ...] = ()  # what matched no tradable symbol, as typed
    suggestions: tuple[str, ...] = ()  # the nearest tradable symbols to the unknown ones

    def problem(self) -> str:
        if not self.unknown:
            return ""
        names = ", ".join(self.unknown)
        near = f" (nearest: {', '.join(self.suggestions)})" if self.suggestions else ""
        return f"not a tradable USDⓈ-M perpetual: {names}{near}"


def resolve(raw: Iterable[str], tradable: Collection[str]) -> Resolved:
    found: list[str] = []
    unknown: list[str] = []
    suggestions: list[str] = []
    for typed in raw:
        symbol = resolve_one(typed, tradable)
        if symbol is None:
            unknown.append(typed)
            suggestions.extend(nearest(typed, tradable))
        elif symbol not in found:
            found.append(symbol)
    return Resolved(tuple(found), tuple(unknown), tuple(dict.fromkeys(suggestions)))


def resolve_one(typed: str, tradable: Collection[str]) -> str | None:
    """`BTCUSDT.P` → BTCUSDT; a bare base asset (`BTC`) → its USDT perpetual; None if neither trades."""
    symbol = normalise_symbol(typed)
    if symbol in tradable:
        return symbol
    if not symbol.endswith(QUOTE) and symbol + QUOTE in tradable:
        return symbol + QUOTE
    return None


def nearest(typed: str, tradable: Collection[str], *, count: int = 3) -> list[str]:
    symbol = normalise_symbol(typed)
    candidates = [symbol, symbol + QUOTE] if not symbol.endswith(QUOTE) else [symbol]
    matches: list[str] = []
    for candidate in candidates:
        matches.extend(difflib.get_close_matches(candidate, sorted(tradable), n=count, cutoff=0.6))
    return list(dict.fromkeys(matches))[:count]
