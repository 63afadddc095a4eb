"""An execution as a trader reads it: its stages in order with the time between them, and its
decision read back as a plan."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from trading.engine import Plan
from trading.models import Execution

# (label, Execution field), in the order an execution passes through them.
STAGES = (
    ("received", "received_at"),
    ("queued", "queued_at"),
    ("started", "started_at"),
    ("sent", "sent_at"),
    ("acknowledged", "acknowledged_at"),
    ("finished", "finished_at"),
)


@dataclass(frozen=True)
class Stage:
    name: str
    at: datetime | None
    since_previous_ms: Decimal | None  # from the previous stage that happened; None for the first or a skipped one
    since_received_ms: Decimal | None
    share_pct: Decimal  # this gap's part of the whole, for drawing a bar


def stage_timeline(execution: Execution) -> list[Stage]:
    """Every stage, skipped ones included (an execution with nothing to send has no sent/acknowledged)."""
    received = execution.received_at
    stamps = [(name, getattr(execution, field)) for name, field in STAGES]
    gaps: list[Decimal | None] = []
    previous: datetime | None = None
    for _name, at in stamps:
        # Execution._ms owns how a stage is measured (Execution.stage_ms uses it too).
        gaps.append(Execution._ms(previous, at))
        previous = at or previous
    total = sum((gap for gap in gaps if gap is not None), Decimal(0))
    return [
        Stage(
            name=name,
            at=at,
            since_previous_ms=gap,
            since_received_ms=Execution._ms(received, at),
            share_pct=(gap / total * 100).quantize(Decimal("0.1")) if gap is not None and total > 0 else Decimal(0),
        )
        for (name, at), gap in zip(stamps, gaps, strict=True)
    ]


def decision_plan(decision: object) -> Plan | None:
    """The stored decision read back through Plan.from_dict; None when there is none or it is not a
    plan (a record written by an older version), in which case the page shows the raw JSON."""
    if not isinstance(decision, dict) or not decision:
        return None
    try:
        return Plan.from_dict(decision)
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return None


# The sizing inputs engine._size records, in the words of the page.
SIZING_LABELS = {
    "mode": "Sizing mode",
    "requested": "Quantity in the alert",
    "quantity_type": "The alert's quantity is in",
    "allocation_pct": "Allocation (% of equity)",
    "risk_pct": "Risk (% of equity lost at the stop)",
    "equity": "Account equity",
    "at_risk": "Lost at the stop (USDT)",
    "leverage": "Leverage",
    "price": "Price sized at",
    "stop": "Stop price",
    "unrounded": "Quantity before rounding",
    "step": "Quantity step",
    "quantity": "Quantity",
}


def sizing_rows(sizing: dict[str, object]) -> list[tuple[str, object]]:
    """Known inputs first, in the order the quantity is computed from them; anything else after, as stored."""
    known = [(label, sizing[key]) for key, label in SIZING_LABELS.items() if key in sizing]
    return known + [(key.replace("_", " "), value) for key, value in sizing.items() if key not in SIZING_LABELS]
