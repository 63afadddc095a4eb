"""A small trading book written with an old schema's models (the fields the first release had, so
any later state takes it too), and every row of the project's tables read back for comparison."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.migrations.state import ProjectState

D = Decimal
T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
APPS = ("trading", "preferences", "analytics", "notifications")
OPEN_KEY = "id:ALSAPRO 1:open-1"  # the webhook's key for `"id": "open-1"` of strategy ALSAPRO 1


def book_old(state: ProjectState, *, passphrase_hash: str = "") -> dict[str, int]:
    """A long of 0.111 BTCUSDT opened by one filled order (a second, never sent), a refused alert, the
    paper exchange's side of the same position, the symbol's settings and an account snapshot."""
    model = state.apps.get_model
    strategy = model("preferences", "StrategyPreference").objects.create(
        name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"], leverage=5, allocation_pct=D(10), sizing="allocation",
        passphrase_hash=passphrase_hash)
    signal = model("trading", "Signal").objects.create(
        payload={"action": "buy", "symbol": "BTCUSDT", "id": "open-1"}, action="buy", symbol="BTCUSDT",
        price=D("45000"), strategy="ALSAPRO 1", sender_time=T0, idempotency_key=OPEN_KEY, status="done",
        http_status=202, received_at=T0, queued_at=T0, preference=strategy)
    refused = model("trading", "Signal").objects.create(
        payload={}, status="rejected", reason="Wrong passphrase.", http_status=401, received_at=T0, idempotency_key=None)
    execution = model("trading", "Execution").objects.create(
        signal=signal, strategy="ALSAPRO 1", symbol="BTCUSDT", exchange="paper", status="filled",
        decision={"legs": [{"purpose": "open", "quantity": "0.111"}]}, reason="Opened long 0.111 BTCUSDT.", attempts=1,
        signal_price=D("45000"), fill_price=D("45010"), slippage_bps=D("2.2222"), received_at=T0, queued_at=T0,
        started_at=T0, sent_at=T0, acknowledged_at=T0 + timedelta(milliseconds=40),
        finished_at=T0 + timedelta(milliseconds=45))
    order = model("trading", "Order").objects.create(
        execution=execution, leg=0, purpose="open", client_order_id="at-1-0", exchange_order_id="880001",
        symbol="BTCUSDT", side="BUY", quantity=D("0.111"), status="FILLED", avg_price=D("45010"),
        executed_qty=D("0.111"), commission=D("1.998444"), commission_asset="USDT", raw_response={"orderId": 880001},
        created_at=T0, sent_at=T0, acknowledged_at=T0)
    unsent = model("trading", "Order").objects.create(
        execution=execution, leg=1, purpose="open", client_order_id="at-1-1", symbol="BTCUSDT", side="BUY",
        quantity=D("0.001"), status="pending", created_at=T0)
    position = model("trading", "Position").objects.create(
        symbol="BTCUSDT", position_side="BOTH", amount=D("0.111"), entry_price=D("45010"), leverage=5, margin_type="cross")
    settings = model("trading", "SymbolSetting")
    # trading/0003 renamed `exchange` (its name) to `account` (its id; the paper exchange's is "paper").
    named = "exchange" if any(field.name == "exchange" for field in settings._meta.fields) else "account"
    settings.objects.create(**{named: "paper"}, symbol="BTCUSDT", leverage=5, margin_type="cross")
    model("trading", "PaperAccount").objects.create(asset="USDT", wallet_balance=D("9998.001556"))
    model("trading", "PaperPrice").objects.create(symbol="BTCUSDT", price=D("45010"))
    model("trading", "PaperPosition").objects.create(symbol="BTCUSDT", amount=D("0.111"), entry_price=D("45010"),
                                                     leverage=5, margin_type="cross")
    model("trading", "PaperOrder").objects.create(
        client_order_id="at-1-0", symbol="BTCUSDT", side="BUY", quantity=D("0.111"), avg_price=D("45010"),
        executed_qty=D("0.111"), commission=D("1.998444"), created_at=T0)
    snapshot = model("analytics", "AccountSnapshot").objects.create(
        taken_at=T0, exchange="paper", asset="USDT", wallet_balance=D("9998.001556"), available_balance=D("9898.1"),
        equity=D("9998.001556"), unrealized_pnl=D(0))
    return {"strategy": strategy.pk, "signal": signal.pk, "refused": refused.pk, "execution": execution.pk,
            "order": order.pk, "unsent": unsent.pk, "position": position.pk, "snapshot": snapshot.pk}


def rows_all(state: ProjectState) -> dict[str, dict[int, dict[str, object]]]:
    """{'app.Model': {pk: {column: value}}} for every table of the project's apps in `state`."""
    return {f"{model._meta.app_label}.{model.__name__}": {row["id"]: row for row in model.objects.values()}
            for model in state.apps.get_models() if model._meta.app_label in APPS}


def assert_kept(before: dict, after: dict, *, renamed: dict[str, str] | None = None, gone: tuple[str, ...] = ()) -> None:
    """Every row of `before` is in `after`, each of its columns holding the same value: a renamed column
    ('app.Model.old': 'new') under its new name; a column in `gone` ('app.Model.column': what a
    backward step drops) absent."""
    renamed = renamed or {}
    for label, rows in before.items():
        assert set(after.get(label, {})) >= set(rows), f"{label}: rows lost"
        for pk, row in rows.items():
            for column, value in row.items():
                if f"{label}.{column}" in gone:
                    assert column not in after[label][pk], f"{label}.{column} should be gone"
                    continue
                now = after[label][pk][renamed.get(f"{label}.{column}", column)]
                assert now == value, f"{label} #{pk}: {column} was {value!r}, is {now!r}"
