from functools import cache, lru_cache
from typing import Any

from django.db import connections, models, transaction
from django.db.models.fields import Field
from django.utils import timezone

from trading.models.amounts import AMOUNT


class SignalManager(models.Manager["Signal"]):
    def insert(self, **values: object) -> int:
        """A new row from its fields' values (by attname: `preference_id`), in one INSERT; its id.

        What create() would write (the same defaults, `auto_now`, each value prepared for the database
        by its field; a NULL left to the column), without building an instance or compiling the query:
        ~350 µs of the webhook's CPU (docs/BENCHMARKS.md). No pre_save/post_save signals are sent;
        none is connected to Signal. A duplicate idempotency key raises IntegrityError, as create() does.
        """
        connection = connections[self.db]
        if not connection.features.can_return_columns_from_insert:
            return self.create(**values).pk
        columns = _columns()
        unknown = values.keys() - columns.keys()
        if unknown:
            raise TypeError(f"Signal has no field(s) {', '.join(sorted(unknown))}")
        now = timezone.now()
        row: dict[str, Any] = {}  # the values as the database driver takes them
        for attname, (field, kind) in columns.items():
            value = values[attname] if attname in values else (now if kind == "now" else field.get_default())
            if value is None and field.null:
                continue  # the column's default is NULL: one parameter fewer to send
            # A str for a text column, an int for an integer one, is already what the database takes.
            plain = (kind == "text" and isinstance(value, str)) or (kind == "int" and type(value) is int)
            row[attname] = value if plain else field.get_db_prep_save(value, connection=connection)
        with transaction.mark_for_rollback_on_error(self.db), connection.cursor() as cursor:
            cursor.execute(_insert_sql(connection.alias, tuple(row)), list(row.values()))
            return cursor.fetchone()[0]


@cache
def _columns() -> dict[str, tuple[Field, str]]:
    """Every column but the id, by attname, with how its value is prepared: "now" (auto_now),
    "text" / "int" (a str / an int needs nothing), or "" (the field prepares it)."""
    columns = {}
    for field in Signal._meta.concrete_fields:
        if field.primary_key:
            continue
        kind = ("now" if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
                else "text" if isinstance(field, models.CharField | models.TextField)
                else "int" if isinstance(field, models.IntegerField | models.ForeignKey) else "")
        columns[field.attname] = (field, kind)
    return columns


@lru_cache(maxsize=64)
def _insert_sql(alias: str, attnames: tuple[str, ...]) -> str:
    """INSERT … RETURNING id of these columns (a few sets occur: which of the nullable ones are set)."""
    quote = connections[alias].ops.quote_name
    columns = ", ".join(quote(str(_columns()[attname][0].column)) for attname in attnames)
    return (f"INSERT INTO {quote(Signal._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(attnames))}) "
            f"RETURNING {quote('id')}")


class Signal(models.Model):
    """One webhook attempt and what became of it: the audit trail of everything TradingView sent."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        FILTERED = "filtered", "Filtered"
        REJECTED = "rejected", "Rejected"
        QUEUED = "queued", "Queued"
        EXECUTING = "executing", "Executing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    FINAL_STATUSES = (Status.FILTERED, Status.REJECTED, Status.DONE, Status.FAILED)

    class Origin(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        OPERATOR = "operator", "Operator (flatten)"

    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WEBHOOK)
    # The raw body as parsed, with the passphrase removed; empty for unauthenticated attempts.
    payload = models.JSONField(default=dict, blank=True)
    action = models.CharField(max_length=20, blank=True)
    symbol = models.CharField(max_length=30, blank=True)
    quantity = models.DecimalField(**AMOUNT, null=True, blank=True)
    price = models.DecimalField(**AMOUNT, null=True, blank=True)
    strategy = models.CharField(max_length=100, blank=True)
    preference = models.ForeignKey(
        "preferences.StrategyPreference", null=True, blank=True, on_delete=models.SET_NULL, related_name="signals"
    )
    sender_time = models.DateTimeField(null=True, blank=True)
    market_position = models.CharField(max_length=10, blank=True)
    prev_market_position = models.CharField(max_length=10, blank=True)
    position_size = models.DecimalField(**AMOUNT, null=True, blank=True)
    stop_loss = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="The alert's `sl` price, if any.")
    take_profit = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="The alert's `tp` price, if any.")
    quantity_type = models.CharField(
        max_length=10, blank=True, default="", db_default="",
        help_text="What the alert's quantity means: contracts (also when blank), usdt (notional) or percent (of equity, "
        "as margin).",
    )
    comment = models.CharField(max_length=255, blank=True)

    source_ip = models.GenericIPAddressField(null=True, blank=True)
    # The sender's `id`, else a digest of the signal's content; NULL for attempts that never parsed.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    reason = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duplicate_count = models.PositiveIntegerField(default=0)
    last_duplicate_at = models.DateTimeField(null=True, blank=True)

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    intake_us = models.PositiveIntegerField(null=True, blank=True, help_text="Webhook processing time, microseconds.")
    updated_at = models.DateTimeField(auto_now=True)

    objects = SignalManager()

    class Meta:
        ordering = ["-received_at", "-id"]
        # Every index is paid for by each webhook's INSERT, so only those a query needs: no index of a
        # column another index starts with, and no `_like` twin (nothing filters with LIKE on these).
        indexes = [
            models.Index(fields=["symbol", "status", "id"], name="signal_symbol_lane"),  # lanes, symbol pages
            models.Index(fields=["strategy", "-received_at"], name="signal_strategy_recent"),  # strategy pages
            models.Index(fields=["status"], name="signal_status"),  # recovery, /health: pending signals
            # The lane's next signal (trading/services.py): only pending signals are in it, so finding
            # one stays a short walk however much history the symbol has and however long since a vacuum.
            models.Index(fields=["symbol", "received_at", "id"], name="signal_pending",
                         condition=models.Q(status__in=["queued", "executing"])),
        ]
        constraints = [
            # The intake's idempotency: a resend's INSERT fails on it (no SELECT first).
            models.UniqueConstraint(fields=["idempotency_key"], name="signal_idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        what = " ".join(part for part in (self.action, self.symbol) if part) or "unparsed"
        return f"#{self.pk} {what} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES
