"""trading 0017_limit_orders and preferences 0012_limit_entries: existing orders stay market orders
(price NULL, time in force ""), existing strategies enter at market (offset 0, timeout 60 s, cancel),
the previous release's code still writes both tables (the columns' database defaults), and both
migrations go back cleanly."""

from decimal import Decimal

from tests.migrations.conftest import schema_at
from tests.migrations.records import T0, assert_kept, book_old, rows_all
from trading.engine import Leg

D = Decimal
BEFORE = [("trading", "0016_trailing_stop_and_ladder"), ("preferences", "0011_breakeven")]
AFTER = [("trading", "0017_limit_orders"), ("preferences", "0012_limit_entries")]


def test_old_orders_stay_market_orders_and_old_strategies_enter_at_market(migrator):
    old = schema_at(migrator, BEFORE)
    book = book_old(old)
    before = rows_all(old)
    new = migrator.apply_tested_migration(AFTER)
    after = rows_all(new)
    assert_kept(before, after)
    for pk in (book["order"], book["unsent"]):
        order = after["trading.Order"][pk]
        assert (order["order_type"], order["price"], order["time_in_force"]) == ("MARKET", None, "")
    [paper_order] = after["trading.PaperOrder"].values()
    assert (paper_order["price"], paper_order["time_in_force"], paper_order["status"]) == (None, "", "FILLED")
    strategy = after["preferences.StrategyPreference"][book["strategy"]]
    assert (strategy["entry"], strategy["entry_offset_pct"], strategy["entry_timeout"], strategy["on_timeout"]) == (
        "market", D(0), 60, "cancel")
    # An execution's decision written before limit entries reads as market legs.
    [leg] = [Leg.from_dict({**data, "side": "BUY", "reduce_only": False})
             for data in after["trading.Execution"][book["execution"]]["decision"]["legs"]]
    assert leg.entry is None


def test_the_previous_release_still_writes_orders_and_strategies_beside_the_new_columns(migrator):
    old = schema_at(migrator, BEFORE)
    book = book_old(old)
    migrator.apply_tested_migration(AFTER)
    # The previous release's models (without the new fields) write to the new schema: the columns'
    # database defaults fill in.
    old.apps.get_model("trading", "Order").objects.create(
        execution_id=book["execution"], leg=2, purpose="open", client_order_id="at-1-2", symbol="BTCUSDT", side="BUY",
        quantity=D("0.001"), status="pending", created_at=T0)
    old.apps.get_model("preferences", "StrategyPreference").objects.create(name="Old code's", products=["BTCUSDT"])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT time_in_force, price FROM trading_order WHERE client_order_id = 'at-1-2'")
        assert cursor.fetchone() == ("", None)
        cursor.execute("SELECT entry, entry_timeout, on_timeout FROM preferences_strategypreference "
                       "WHERE name = 'Old code''s'")
        assert cursor.fetchone() == ("market", 60, "cancel")


def test_both_go_back_cleanly(migrator):
    old = schema_at(migrator, BEFORE)
    book_old(old)
    before = rows_all(old)
    migrator.apply_tested_migration(AFTER)
    back = migrator.apply_tested_migration(BEFORE)
    assert_kept(before, rows_all(back))
