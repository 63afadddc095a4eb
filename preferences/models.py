import hashlib
import hmac
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from simple_history.models import HistoricalRecords


class StrategyPreference(models.Model):
    """How one TradingView strategy (matched by its `strategy` string) is allowed to trade."""

    class Direction(models.TextChoices):
        LONG = "long", "Long only"
        SHORT = "short", "Short only"
        BOTH = "both", "Long and short"

    class MarginType(models.TextChoices):
        CROSS = "cross", "Cross"
        ISOLATED = "isolated", "Isolated"

    class Sizing(models.TextChoices):
        AUTO = "auto", "The alert's quantity when it has one, else allocation"
        ALLOCATION = "allocation", "Allocation of equity (the alert's quantity is ignored)"
        SIGNAL = "signal", "The alert's quantity (refused without one)"
        RISK = "risk", "Risk: lose risk % of equity at the stop"

    name = models.CharField(max_length=100, unique=True, help_text="The alert's `strategy` value, exactly.")
    enabled = models.BooleanField(default=True, help_text="Signals of a disabled strategy are recorded, not traded.")
    products = models.JSONField(
        default=list, blank=True, help_text="Symbols this strategy may trade, e.g. BTCUSDT, ETHUSDT. None: nothing is traded."
    )
    direction = models.CharField(max_length=5, choices=Direction.choices, default=Direction.BOTH)
    leverage = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(125)])
    margin_type = models.CharField(max_length=8, choices=MarginType.choices, default=MarginType.CROSS)
    # New strategies size by `auto`; strategies saved before it existed keep the sizing they had.
    sizing = models.CharField(max_length=10, choices=Sizing.choices, default=Sizing.AUTO)
    allocation_pct = models.DecimalField(
        "allocation %",
        max_digits=7,
        decimal_places=4,
        default=Decimal("10"),
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("100"))],
        help_text="Percent of account equity per position, before leverage (0 < x ≤ 100).",
    )
    risk_pct = models.DecimalField(
        "risk %", max_digits=7, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("100"))],
        help_text="With risk sizing: percent of equity lost if the stop is hit (the alert's `sl`, else stop-loss %).",
    )
    max_position_usdt = models.DecimalField(
        "max position (USDT)", max_digits=28, decimal_places=10, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="A position's notional after an order may not pass this: such an order is refused, never shrunk. "
        "Empty: no cap.",
    )
    price_tolerance_pct = models.DecimalField(
        "price tolerance %",
        max_digits=7,
        decimal_places=4,
        default=Decimal("5"),
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("100"))],
        help_text="An alert's price further than this from the mark price is not trusted: the order is sized at the "
        "mark price instead, and the execution says so.",
    )
    stop_loss = models.DecimalField(
        "stop-loss %", max_digits=7, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="A stop-loss this percent from the entry fill price, placed on the exchange after each entry. "
        "Empty or 0: none (an alert's `sl` price still places one).",
    )
    take_profit = models.DecimalField(
        "take-profit %", max_digits=8, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1000"))],
        help_text="A take-profit this percent from the entry fill price. Empty or 0: none (an alert's `tp` still places one).",
    )
    # A JSON column beside `take_profit` rather than a change of its type: old code beside it reads the number.
    take_profit_ladder = models.JSONField(
        null=True, blank=True, default=None,
        help_text='Take-profit levels instead of one: [{"pct": "2", "share": "50"}, …], up to 5, each a percent from the '
        "entry and a share of the position (shares sum to 100). Empty: the single take-profit %.",
    )
    class BreakevenTo(models.TextChoices):
        ENTRY = "entry", "The entry price plus the fees paid"
        PREVIOUS_TP = "previous_tp", "The previous take-profit level's price"

    breakeven_after = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="After this take-profit ladder level fills (or a later one), the stop-loss moves to breakeven. "
        "Empty: it stays.",
    )
    breakeven_to = models.CharField(
        max_length=11, choices=BreakevenTo.choices, default=BreakevenTo.ENTRY, db_default=BreakevenTo.ENTRY,
        help_text="Where the stop moves: the entry price plus the fees paid, or the price of the level before the one "
        "that filled (the entry's for level 1).",
    )
    trailing_stop = models.JSONField(
        null=True, blank=True, default=None,
        help_text='A trailing stop placed after each entry: {"callback": "1", "activation_pct": "2"}, callback '
        "0.1–10 % from the best price since activation, activation this percent from the entry (empty: at once). "
        "Empty: none (an alert's `trail` still places one).",
    )
    max_daily_loss = models.DecimalField(
        "max daily loss (USDT)",
        max_digits=28,
        decimal_places=10,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Net realized loss since 00:00 UTC that halts the strategy's opening orders until the next UTC day. "
        "Empty: no limit.",
    )
    max_open_positions = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Open positions across the strategy's symbols beyond which no new one is opened. Empty: no limit.",
    )
    class Entry(models.TextChoices):
        MARKET = "market", "Market order"
        LIMIT = "limit", "Limit order (takes if the price is already there)"
        POST_ONLY = "post_only", "Post-only limit order (maker only: refused rather than take)"

    class OnTimeout(models.TextChoices):
        CANCEL = "cancel", "Cancel what is left"
        MARKET = "market", "Buy or sell what is left at market"

    entry = models.CharField(
        max_length=9, choices=Entry.choices, default=Entry.MARKET, db_default=Entry.MARKET,
        help_text="How an opening or adding order goes out. A limit entry's price is the alert's limit_price, else its "
        "price less (buy) or plus (sell) the entry offset.",
    )
    entry_offset_pct = models.DecimalField(
        "entry offset %", max_digits=7, decimal_places=4, default=Decimal("0"), db_default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50"))],
        help_text="A limit entry's distance from the alert's price, in % (0: at the alert's price).",
    )
    entry_timeout = models.PositiveIntegerField(
        "entry timeout (s)", default=60, db_default=60, validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds a limit entry rests on the book before what is left is dealt with as 'on timeout' says. "
        "An alert for the symbol arriving meanwhile ends the wait: what is left is cancelled, and that alert goes next.",
    )
    on_timeout = models.CharField(
        max_length=6, choices=OnTimeout.choices, default=OnTimeout.CANCEL, db_default=OnTimeout.CANCEL,
        help_text="What becomes of a limit entry's unfilled part at the timeout. Partial fills count either way.",
    )
    max_adds = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="Same-direction adds to an open position, counted since it opened; further adds are refused. "
        "0: none. Empty: no limit.",
    )
    sync_to_alert = models.BooleanField(
        default=False,
        help_text="When an alert says the strategy was flat before it but we hold the position (an exit alert was "
        "missed), do not add to it: trade to the alert's stated position rather than the delta.",
    )
    halted_until = models.DateTimeField(
        null=True, blank=True,
        help_text="Set when the daily loss limit is reached: opening orders are refused until then. Clear it to lift the halt.",
    )
    passphrase_hash = models.CharField(
        max_length=80, blank=True, editable=False, help_text="SHA-256 of the strategy's own webhook passphrase, if any."
    )
    max_signal_age = models.PositiveIntegerField(
        "max signal age (s)", null=True, blank=True, help_text="Overrides WEBHOOK_MAX_SIGNAL_AGE for this strategy."
    )
    # Protections (docs/PROTECTION.md): each refuses opening orders, never closes.
    cooldown_after_loss = models.PositiveIntegerField(
        "cooldown after a loss (min)", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Minutes after a losing trade of this strategy during which opens are refused. Empty: none.",
    )
    max_trades_per_day = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Opening trades per UTC day; further opens are refused until 00:00 UTC. Empty: no limit.",
    )
    loss_streak_limit = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="After this many losing trades in a row, opens are locked until the next UTC day. Empty: none.",
    )
    max_drawdown_pct = models.DecimalField(
        "max drawdown %", max_digits=7, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("100"))],
        help_text="A drawdown of the strategy's realized P&L from its peak (as % of equity) that locks opens until "
        "an operator clears the lock. Empty: none.",
    )
    drawdown_locked_at = models.DateTimeField(
        null=True, blank=True, help_text="When the drawdown lock engaged; clear it to trade again.",
    )
    drawdown_since = models.DateTimeField(
        null=True, blank=True,
        help_text="The drawdown is measured over trades since this moment (set when a lock is cleared).",
    )
    trading_hours = models.CharField(
        max_length=200, blank=True, default="", db_default="",
        help_text='UTC windows when opens are allowed, e.g. "mon-fri 07:00-21:00, sun 18:00-23:59". Empty: always.',
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Who changed what and when, from the admin, the pages or the API: the admin's "History" shows it.
    # The passphrase's hash stays out: anyone who may view strategies may read the trail, and a
    # fast SHA-256 of a passphrase is not for them to try guesses against.
    history = HistoricalRecords(excluded_fields=["passphrase_hash"])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(leverage__gte=1, leverage__lte=125), name="leverage_1_to_125"),
            models.CheckConstraint(
                condition=models.Q(allocation_pct__gt=0, allocation_pct__lte=100), name="allocation_pct_0_to_100"
            ),
            models.CheckConstraint(condition=models.Q(direction__in=["long", "short", "both"]), name="direction_valid"),
            models.CheckConstraint(condition=models.Q(margin_type__in=["cross", "isolated"]), name="margin_type_valid"),
            models.CheckConstraint(
                condition=models.Q(sizing__in=["auto", "allocation", "signal", "risk"]), name="sizing_valid_v2"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def set_passphrase(self, passphrase: str) -> None:
        # A fast digest on purpose: it is checked on every webhook, and the webhook's own latency
        # budget is a few milliseconds. Keyed by SECRET_KEY, so a leaked dump or backup alone does
        # not let anyone try guesses against it; only the digest is stored, so pages never hold it.
        self.passphrase_hash = _passphrase_digest(passphrase, settings.SECRET_KEY) if passphrase else ""

    def check_passphrase(self, passphrase: str) -> bool:
        """Also accepts a digest under one of SECRET_KEY_FALLBACKS, or a bare SHA-256 stored before
        digests were keyed; either is rewritten under SECRET_KEY once it matches."""
        stored = self.passphrase_hash
        if not stored:
            return False
        if stored.startswith(PASSPHRASE_DIGEST):
            if hmac.compare_digest(_passphrase_digest(passphrase, settings.SECRET_KEY), stored):
                return True
            matched = any(hmac.compare_digest(_passphrase_digest(passphrase, key), stored)
                          for key in settings.SECRET_KEY_FALLBACKS)
        else:
            matched = hmac.compare_digest(hashlib.sha256(passphrase.encode()).hexdigest(), stored)
        if matched:
            self._passphrase_upgrade(passphrase, stored)
        return matched

    def _passphrase_upgrade(self, passphrase: str, stored: str) -> None:
        """An UPDATE of the one column, not save(): it changes no setting, so it must neither tell every
        web process to read the strategy again nor add to its history; and only while the row holds the
        digest that matched, so a passphrase changed meanwhile stays changed. The object is updated
        too: it may be the one the webhook's per-process cache keeps (preferences/intake.py)."""
        self.passphrase_hash = _passphrase_digest(passphrase, settings.SECRET_KEY)
        if self.pk is not None:
            StrategyPreference.objects.filter(pk=self.pk, passphrase_hash=stored).update(passphrase_hash=self.passphrase_hash)

    def sizing_summary(self) -> str:
        """How an order's quantity is chosen, in the words a trader reads on the strategy page."""
        allocation = f"{_plain(self.allocation_pct)} % of equity × {self.leverage}× leverage"
        cap = f"; positions capped at {_plain(self.max_position_usdt)} USDT" if self.max_position_usdt else ""
        if self.sizing == self.Sizing.AUTO:
            said = f"The alert's quantity when it carries one, otherwise {allocation}"
        elif self.sizing == self.Sizing.SIGNAL:
            said = "The alert's quantity; an alert without one is refused"
        elif self.sizing == self.Sizing.RISK:
            risk = f"{_plain(self.risk_pct)} %" if self.risk_pct else "risk % (not set: every open is refused)"
            said = f"Sized so that the stop loses {risk} of equity (the alert's sl, else the stop-loss %)"
        else:
            said = f"{allocation}; an alert's quantity is ignored"
        return said + cap + "."

    def allows_symbol(self, symbol: str) -> bool:
        return symbol in self.products

    def drawdown_clear(self) -> None:
        """Lift the drawdown lock and measure the drawdown afresh from now, so the drawdown that
        locked does not lock again at the next signal. The caller saves (the form, or the page's
        button with update_fields)."""
        self.drawdown_locked_at = None
        self.drawdown_since = timezone.now()


PASSPHRASE_DIGEST = "hmac-sha256$"


def _passphrase_digest(passphrase: str, secret: str | bytes) -> str:
    """HMAC-SHA256 under a key derived from `secret` for this purpose alone (Django's salted_hmac)."""
    mac = salted_hmac("alsatrade.strategy-passphrase", passphrase, secret=secret, algorithm="sha256")
    return PASSPHRASE_DIGEST + mac.hexdigest()


def _plain(number: Decimal | None) -> str:
    return "" if number is None else format(number.normalize(), "f")
