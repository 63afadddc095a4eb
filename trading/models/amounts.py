"""Field sizes shared by every money and quantity column: Decimal, never float."""

from typing import Final, TypedDict


class AmountSize(TypedDict):
    """The keyword arguments that size a DecimalField, typed so `DecimalField(**AMOUNT)` type-checks."""

    max_digits: int
    decimal_places: int


# 28 digits with 10 after the point hold a 1e18 balance and a 1e-10 price step exactly.
AMOUNT: Final[AmountSize] = {"max_digits": 28, "decimal_places": 10}
