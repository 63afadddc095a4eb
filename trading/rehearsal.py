"""What an alert message would do now, without doing it: the strategy page's "Test an alert" box.

The message is what a trader pastes into TradingView. Its placeholders (`{{ticker}}`, `{{close}}`,
`{{timenow}}`, `{{strategy.order.action}}`, …) are filled with sample values the way TradingView
would fill them, and the result goes through the webhook's own checks (trading/webhook.py `admit`:
JSON, fields, freshness; the passphrase excepted: this page never asks for it) and the strategy's
filters, then through the worker's decision (trading/deciding.py `decide`: sizing, risk limits,
protections, limit entries) against the exchange's rules, prices and our positions as they are now.
Nothing is stored (the decision runs in a transaction that is rolled back) and nothing is sent: the
exchange is only read. A bad field answers as the webhook would, naming the field.
"""

import re
import time
from dataclasses import dataclass, field, replace
from decimal import ROUND_UP, Decimal

from django.db import transaction
from django.utils import timezone

from preferences.models import StrategyPreference
from trading import deciding, engine
from trading.exchange import ExchangeError, get_exchange
from trading.intake import idempotency_key
from trading.lanes import Lane
from trading.mandate import Mandate
from trading.models import Signal
from trading.webhook import Refusal, admit, filter_reason, signal_fields

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
MAX_MESSAGE = 4000


@dataclass(frozen=True)
class Rehearsal:
    """The webhook's answer and, for an alert it would queue, the decision a worker would make now."""

    status: int  # the HTTP status the webhook would answer
    summary: str  # one line: what would happen
    error: str = ""  # the webhook's refusal
    fields: dict[str, str] = field(default_factory=dict)  # bad fields, by name
    outcome: str = ""  # trade, nothing, filtered, refused, skipped: the decision's
    legs: tuple[engine.Leg, ...] = ()
    price: Decimal | None = None  # the price the legs were sized at
    filled: dict[str, str] = field(default_factory=dict)  # placeholder → the sample value it was given
    notes: tuple[str, ...] = ()
    elapsed_ms: float = 0.0


def rehearse(message: str, strategy: StrategyPreference) -> Rehearsal:
    started = time.perf_counter()
    text, filled = placeholders_filled(message[:MAX_MESSAGE], strategy)
    return replace(_rehearse(text, filled), elapsed_ms=(time.perf_counter() - started) * 1000)


def _rehearse(text: str, filled: dict[str, str]) -> Rehearsal:
    notes = ["The passphrase is not checked here: the webhook checks it on every alert."]
    now = timezone.now()
    try:
        admitted = admit(text.encode(), received_at=now, generation=None, authenticate=False)
    except Refusal as refusal:
        return Rehearsal(refusal.status, f"The webhook would refuse it ({refusal.status}): {refusal.error}",
                         error=refusal.error, fields=dict(refusal.fields or {}), filled=filled, notes=tuple(notes))
    parsed, preference = admitted.parsed, admitted.preference
    if Signal.objects.filter(idempotency_key=idempotency_key(parsed)).exists():
        notes.append("An alert with the same key was received before: the webhook would answer it as a duplicate "
                     "(200) and not trade it again.")
    reason = filter_reason(parsed, preference)
    if reason:
        return Rehearsal(200, f"The webhook would take it but not trade it: {reason}", outcome="filtered",
                         filled=filled, notes=tuple(notes))
    signal = Signal(**signal_fields(parsed, admitted.payload, None, now), preference=preference, queued_at=now,
                    status=Signal.Status.EXECUTING, idempotency_key="rehearsal")
    exchange = get_exchange()
    mandate = Mandate(lane=Lane(parsed.symbol, "rehearsal"), received_at=now)
    try:
        with transaction.atomic():
            decision = deciding.decide(signal=signal, exchange=exchange, mandate=mandate)
            transaction.set_rollback(True)  # whatever deciding wrote (a fresh snapshot) is not kept
    except ExchangeError as error:
        return Rehearsal(202, f"The webhook would queue it; the worker could not decide now: {error.reason}",
                         outcome="unknown", filled=filled, notes=tuple(notes))
    if isinstance(decision, deciding.Verdict):
        return Rehearsal(202, f"The webhook would queue it; the worker would send no order: {decision.reason}",
                         outcome=str(decision.signal_status or decision.status), filled=filled, notes=tuple(notes))
    return Rehearsal(202, f"The webhook would queue it; the worker would now {decision.reason}", outcome="trade",
                     legs=decision.legs, price=decision.price, filled=filled, notes=tuple(notes))


def placeholders_filled(message: str, strategy: StrategyPreference) -> tuple[str, dict[str, str]]:
    """The message with TradingView's placeholders replaced by sample values (a buy of the smallest
    quantity the strategy's first symbol allows, at its mark price, now); which were replaced."""
    samples: dict[str, str] = {}
    found = {match.group(1) for match in PLACEHOLDER.finditer(message)}
    if not found:
        return message, samples
    symbol = (strategy.products or ["BTCUSDT"])[0]
    values = _sample_values(symbol)
    for name in sorted(found):
        value = values.get(name)
        if value is None and name.startswith("plot"):
            value = values["close"]
        if value is not None:
            samples[f"{{{{{name}}}}}"] = value
    text = PLACEHOLDER.sub(lambda match: samples.get(f"{{{{{match.group(1)}}}}}", match.group(0)), message)
    return text, samples


def _sample_values(symbol: str) -> dict[str, str]:
    now = timezone.now()
    price, quantity = _price_and_quantity(symbol)
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "ticker": symbol, "exchange": "BINANCE", "close": price, "open": price, "high": price, "low": price,
        "volume": "1000", "interval": "1", "timenow": stamp, "time": stamp,
        "strategy.order.action": "buy", "strategy.order.contracts": quantity, "strategy.order.price": price,
        "strategy.order.id": "rehearsal", "strategy.order.comment": "rehearsal", "strategy.order.alert_message": "",
        "strategy.market_position": "long", "strategy.prev_market_position": "flat",
        "strategy.market_position_size": quantity, "strategy.prev_market_position_size": "0",
        "strategy.position_size": quantity,
    }


def _price_and_quantity(symbol: str) -> tuple[str, str]:
    """The symbol's mark price now and the least quantity worth an order at it (its minimum notional,
    rounded up to the step); a round sample when the exchange cannot say."""
    exchange = get_exchange()
    try:
        price = exchange.get_mark_price(symbol)
        rules = exchange.get_symbol_rules(symbol)
    except ExchangeError:
        return "100", "1"
    steps = (rules.min_notional / price / rules.step_size).to_integral_value(rounding=ROUND_UP)
    quantity = max(steps * rules.step_size, rules.min_qty)
    return engine.plain(price), engine.plain(quantity)
