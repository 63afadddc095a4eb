"""trading 0013_halt_history: the kill switch's row keeps its state, gets no address, and starts its
history with one copy of itself."""

from tests.migrations.conftest import schema_at
from tests.migrations.records import T0


def test_it_starts_the_kill_switch_history_from_its_state(migrator):
    old = schema_at(migrator, [("trading", "0012_drop_drf_tokens")])
    old.apps.get_model("trading", "TradingHalt").objects.create(pk=1, halted=True, reason="incident", changed_by="ops")
    new = migrator.apply_tested_migration([("trading", "0013_halt_history")])
    halt = new.apps.get_model("trading", "TradingHalt").objects.get()
    assert (halt.halted, halt.reason, halt.changed_by, halt.changed_from) == (True, "incident", "ops", None)
    [row] = new.apps.get_model("trading", "HistoricalTradingHalt").objects.all()
    assert (row.id, row.halted, row.reason, row.changed_by, row.changed_at, row.history_type) == (
        1, True, "incident", "ops", halt.changed_at, "+")
    assert row.history_date > T0 and row.history_change_reason == "state when the history began"

    back = migrator.apply_tested_migration([("trading", "0012_drop_drf_tokens")])
    assert back.apps.get_model("trading", "TradingHalt").objects.get().reason == "incident"
