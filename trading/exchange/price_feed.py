"""The paper market's prices between alerts: Binance's public mark prices, read every few seconds.

GET {PAPER_PRICE_FEED}/fapi/v1/premiumIndex without a symbol answers every symbol's mark price in
one request (weight 10; no key). The paper exchange's user data stream process (trading/live.py)
calls `due()` on each of its polls; only every `every` seconds does it ask, and only for the
symbols the paper exchange watches (a position, a resting order, a protective order). A feed that
fails is logged once per minute and tried again at the next interval: the paper market then moves
with the alerts' prices only, as it does without a feed.
Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Mark-Price
"""

import logging
import math
import time
from collections.abc import Collection
from decimal import Decimal, InvalidOperation

import requests

logger = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds
COMPLAIN_EVERY = 60.0  # seconds between log lines of a feed that keeps failing


class PriceFeed:
    def __init__(self, base_url: str, *, every: float) -> None:
        self.url = f"{base_url.rstrip('/')}/fapi/v1/premiumIndex"
        self.every = every
        self.session = requests.Session()
        self._asked_at = -math.inf  # monotonic seconds: never yet
        self._complained_at = -math.inf

    def due(self, symbols: Collection[str]) -> dict[str, Decimal]:
        """The watched symbols' mark prices when a read is due and there is something to watch; {}
        otherwise (and when the feed fails)."""
        now = time.monotonic()
        if not symbols or now - self._asked_at < self.every:
            return {}
        self._asked_at = now
        try:
            prices = self.read()
        except (requests.RequestException, ValueError) as error:
            if now - self._complained_at >= COMPLAIN_EVERY:
                self._complained_at = now
                logger.warning("paper price feed %s failed (%s: %s); the paper market moves with alerts only until "
                               "it answers", self.url, type(error).__name__, error)
            return {}
        return {symbol: prices[symbol] for symbol in symbols if symbol in prices}

    def read(self) -> dict[str, Decimal]:
        """Every symbol's mark price; ValueError for an answer that is not Binance's list of them."""
        response = self.session.get(self.url, timeout=TIMEOUT)
        response.raise_for_status()
        rows = response.json()
        if not isinstance(rows, list):
            raise ValueError(f"expected a list of mark prices, got {type(rows).__name__}")
        prices: dict[str, Decimal] = {}
        for row in rows:
            try:
                price = Decimal(str(row["markPrice"]))
            except (KeyError, TypeError, InvalidOperation):
                continue
            if price.is_finite() and price > 0:
                prices[str(row.get("symbol", ""))] = price
        return prices
