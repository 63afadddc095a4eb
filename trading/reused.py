"""Hot-path UPDATEs whose SQL the ORM writes once per database, then runs again with new values.

Building a queryset's SQL costs a few hundred microseconds of Python every time (docs/BENCHMARKS.md),
though from one run to the next only its values change. A `ReusedUpdate` has the ORM write the
statement once per database, with a marker in place of each value that changes, remembers where each
marker landed among the parameters, and from then on only puts the new values there. The SQL stays the
ORM's own (quoting, each database's date arithmetic), and it is the same text every time, which is
also what lets PostgreSQL prepare it (DB_PREPARED_STATEMENTS).

Only the values named as changing may change; everything else in the statement is fixed when it is
first written, so a setting that can change (a lease length) must be passed as a value too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    CharField,
    DateTimeField,
    DurationField,
    Field,
    IntegerField,
    QuerySet,
    TextField,
)
from django.db.models.sql import UpdateQuery


@dataclass(frozen=True)
class _Written:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str], ...]  # (index among the parameters, name of the value that goes there)


class ReusedUpdate:
    """`build(**values)` returns (queryset, {field: new value}), what `queryset.update(...)` takes;
    `changing` names each value that changes from run to run and the model field it is stored in or
    compared with (which says how the database receives it)."""

    def __init__(self, build: Callable[..., tuple[QuerySet[Any], dict[str, Any]]], **changing: Field[Any, Any]) -> None:
        self.build = build
        self.changing = changing
        self.written: dict[tuple[str, str], _Written] = {}

    def run(self, **values: object) -> int:
        """Run the UPDATE with these values; the number of rows it changed."""
        written = self._written()
        params = list(written.params)
        for index, name in written.slots:
            params[index] = self.changing[name].get_db_prep_save(values[name], connection)
        with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
            cursor.execute(written.sql, params)
            return cursor.rowcount

    def sql(self, **values: object) -> tuple[str, tuple[Any, ...]]:
        """What the ORM writes for these values, written afresh (for comparison in tests)."""
        return self._compile(**values)

    def _written(self) -> _Written:
        key = (connection.alias, connection.vendor)
        if key not in self.written:
            markers = {name: _marker(field, number) for number, (name, field) in enumerate(self.changing.items(), 1)}
            sql, params = self._compile(**markers)
            landed = {name: self.changing[name].get_db_prep_save(marker, connection) for name, marker in markers.items()}
            slots = tuple((index, name) for index, param in enumerate(params)
                          for name, marker in landed.items() if type(param) is type(marker) and param == marker)
            missing = set(markers) - {name for _, name in slots}
            if missing:
                raise RuntimeError(f"values {sorted(missing)} are not parameters of: {sql}")
            self.written[key] = _Written(sql, tuple(params), slots)
        return self.written[key]

    def _compile(self, **values: object) -> tuple[str, tuple[Any, ...]]:
        queryset, changes = self.build(**values)
        query = queryset.query.chain(UpdateQuery)
        assert isinstance(query, UpdateQuery)
        query.add_update_values(changes)
        query.clear_select_clause()
        sql, params = query.get_compiler(connection=connection).as_sql()
        return sql, tuple(params)


def _marker(field: Field[Any, Any], number: int) -> object:
    """A value of the field's type that nothing else in a statement will be."""
    if isinstance(field, CharField | TextField):
        return f"\x1ereused value {number}\x1e"
    if isinstance(field, IntegerField):
        return -(2**40) - number
    if isinstance(field, DateTimeField):
        return datetime(1901, 2, 3, 4, 5, 6, number, tzinfo=UTC)
    if isinstance(field, DurationField):
        return timedelta(days=12345, microseconds=number)
    raise TypeError(f"no marker for a {type(field).__name__}")
