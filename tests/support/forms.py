"""What the strategy page's form posts, as the tests fill it in."""


def strategy_form(**fields: str) -> dict[str, str]:
    """The form for ALSAPRO 1 on BTCUSDT at 5x with 10 % allocated, with `fields` added or overriding."""
    return {"name": "ALSAPRO 1", "enabled": "on", "products": "BTCUSDT", "direction": "both", "leverage": "5",
            "margin_type": "cross", "sizing": "allocation", "allocation_pct": "10", "price_tolerance_pct": "5",
            "max_signal_age": "", "notes": "", "new_passphrase": "", **fields}
