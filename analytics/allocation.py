"""The dashboard's allocation by strategy: the notional of the open positions, per strategy. Pure: no ORM.

Positions are the exchange's, one per symbol (and side in hedge mode), not one per strategy. A symbol's
position is attributed to the strategy whose execution last traded it; one no execution of ours traded
(opened by hand, or before this install) is UNATTRIBUTED. Where two strategies trade one symbol, the
whole position shows under the latest of them.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

UNATTRIBUTED = "(unattributed)"
SHARE_PLACES = Decimal("0.1")


@dataclass(frozen=True)
class Holding:
    symbol: str
    amount: Decimal  # signed: positive long, negative short
    price: Decimal | None  # the mark price, or else the entry price
    strategy: str  # the strategy whose execution last traded the symbol; "" when none did

    @property
    def notional(self) -> Decimal:
        return abs(self.amount) * (self.price or 0)


@dataclass(frozen=True)
class Allocation:
    strategy: str
    notional: Decimal  # Σ |size| × price of the positions attributed to the strategy
    share_pct: Decimal  # of all open notional, to 0.1 %
    symbols: tuple[str, ...]


def allocation_by_strategy(holdings: Iterable[Holding]) -> list[Allocation]:
    """Largest first; empty when nothing is open (or nothing has a price)."""
    notional: dict[str, Decimal] = defaultdict(Decimal)
    symbols: dict[str, list[str]] = defaultdict(list)
    for holding in holdings:
        name = holding.strategy or UNATTRIBUTED
        notional[name] += holding.notional
        if holding.symbol not in symbols[name]:
            symbols[name].append(holding.symbol)
    total = sum(notional.values(), Decimal(0))
    if not total:
        return []
    rows = [Allocation(name, value, (value / total * 100).quantize(SHARE_PLACES), tuple(sorted(symbols[name])))
            for name, value in notional.items()]
    return sorted(rows, key=lambda row: (-row.notional, row.strategy))
