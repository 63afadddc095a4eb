"""The kill switch: halt opening orders everywhere, and optionally close every open position now.

While halted, every opening leg is refused with the reason and closing legs still go out
(trading/risk.py). The `default` account's own switch (trading/accounts.py) binds the same way: it is
the account the strategies trade. `flatten` queues, for each open position, an operator signal that closes it
through the normal execution path: its lane, its exactly-once sending, its record.
"""

import logging

from django.db import transaction
from django.db.models import Value
from django.utils import timezone

from notifications.events import notify
from trading.models import Account, Position, Signal, TradingHalt
from trading.models.account import DEFAULT
from trading.queue import enqueue_execution

log = logging.getLogger(__name__)


def halt_set(*, halted: bool, reason: str = "", by: str = "", address: str | None = None) -> TradingHalt:
    """Halt or resume, as `by` from `address`. The row is locked from read to write: two operators at
    once are applied one after the other, each notification and history row telling what it changed."""
    reason = reason[:255] if halted else ""
    with transaction.atomic():
        TradingHalt.create_if_missing()
        halt = TradingHalt.objects.select_for_update().get(pk=1)
        was = halt.halted
        halt.halted, halt.reason, halt.changed_by, halt.changed_from = halted, reason, by[:150], address
        halt.save()  # and its history row (TradingHalt.history)
        if halted:
            # On one line whatever was typed: a line break in the reason must not forge a log line of its own.
            log.warning("kill switch halted by %s from %s: %s", by, address or "-", " ".join(reason.split()) or "(none given)")
        else:
            log.info("kill switch resumed by %s from %s", by, address or "-")
        if halted != was:
            text = f"Trading halted by {by}: opening orders are refused" + (f" ({reason})" if reason else "") if halted \
                else f"Trading resumed by {by}"
            notify("halt", text)
    return halt


def opening_refusal() -> str:
    """Why a kill switch refuses opening legs now, "" when none does: the global one first, then the
    `default` account's. Read on every opening signal, so both in one statement, which a missing row
    (a switch never used) leaves out."""
    switches = dict(
        TradingHalt.objects.filter(pk=1, halted=True).order_by().annotate(switch=Value("global"))
        .values_list("switch", "reason")
        .union(Account.objects.filter(name=DEFAULT, halted=True).order_by().annotate(switch=Value("account"))
               .values_list("switch", "halted_reason"), all=True)
    )
    if "global" in switches:
        return "trading is halted by the kill switch" + (f": {switches['global']}" if switches["global"] else "")
    if "account" in switches:
        return f"trading is halted by account {DEFAULT!r}'s kill switch" + (
            f": {switches['account']}" if switches["account"] else "")
    return ""


def positions_flatten(*, by: str) -> list[int]:
    """Queue a close of every open position; the operator signals' ids."""
    now = timezone.now()
    symbols = sorted(set(Position.objects.exclude(amount=0).values_list("symbol", flat=True)))
    signal_ids = []
    with transaction.atomic():
        for symbol in symbols:
            signal = Signal.objects.create(
                origin=Signal.Origin.OPERATOR, action="close", symbol=symbol, strategy="(flatten)",
                status=Signal.Status.QUEUED, received_at=now, queued_at=now, http_status=202,
                idempotency_key=f"flatten:{now.timestamp():.6f}:{symbol}", comment=f"flatten by {by}"[:255],
                reason="flatten: close the whole position",
            )
            enqueue_execution(signal.pk)
            signal_ids.append(signal.pk)
    return signal_ids
