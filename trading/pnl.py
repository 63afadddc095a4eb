"""Position arithmetic, pure: what a fill does to a position's size, entry price and realized P&L."""

from decimal import Decimal

ZERO = Decimal(0)


def position_after(amount: Decimal, entry_price: Decimal, signed_quantity: Decimal,
                   price: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(new signed amount, new entry price, realized P&L) after a fill of `signed_quantity`
    (positive buys) at `price`. Same direction averages the entry; the opposite direction realizes
    P&L on the part it closes and, past zero, opens the other side at the fill price."""
    new_amount = amount + signed_quantity
    if amount == 0 or (amount > 0) == (signed_quantity > 0):
        entry = (abs(amount) * entry_price + abs(signed_quantity) * price) / abs(new_amount)
        return new_amount, entry, ZERO
    closed = min(abs(amount), abs(signed_quantity))
    realized = (price - entry_price) * closed * (1 if amount > 0 else -1)
    if new_amount == 0:
        return new_amount, ZERO, realized
    if (new_amount > 0) == (amount > 0):
        return new_amount, entry_price, realized
    return new_amount, price, realized
