"""Field sizes shared by every money and quantity column: Decimal, never float."""

# 28 digits with 10 after the point hold a 1e18 balance and a 1e-10 price step exactly.
AMOUNT = {"max_digits": 28, "decimal_places": 10}
