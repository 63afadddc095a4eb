from decimal import Decimal as D

import pytest

from trading.pnl import position_after


@pytest.mark.parametrize(
    ("amount", "entry", "fill", "price", "expected"),
    [
        ("0", "0", "0.5", "100", ("0.5", "100", "0")),  # open long
        ("0.5", "100", "0.5", "200", ("1.0", "150", "0")),  # add: average entry
        ("1", "150", "-0.4", "200", ("0.6", "150", "20")),  # partial close keeps the entry
        ("1", "150", "-1", "120", ("0", "0", "-30")),  # full close
        ("1", "150", "-3", "100", ("-2", "100", "-50")),  # flip: the rest opens short at the fill
        ("-2", "100", "2", "90", ("0", "0", "20")),  # short closed in profit
    ],
)
def test_it_applies_a_fill_to_a_position(amount, entry, fill, price, expected):
    assert position_after(D(amount), D(entry), D(fill), D(price)) == tuple(D(x) for x in expected)
