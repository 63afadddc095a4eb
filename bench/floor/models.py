"""One table: a row per signal, unique by the alert's id (the real Signal's idempotency key)."""

from django.db import models


class FloorSignal(models.Model):
    key = models.CharField(max_length=128, unique=True)
    received_at = models.DateTimeField()
