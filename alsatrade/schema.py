"""Is the database's schema the one this code was written for?

A long-running process started on an older schema does not fail at once: it logs column errors in
a loop, or writes rows old code cannot read. So the worker (`qcluster`) and the user data stream
(`userstream`) refuse to start while a migration is unapplied, and `/health` names the missing ones.
(`serve` migrates before it starts anything, so it cannot meet an old schema.)

The reverse — a database migrated past this code — is what a rolling upgrade looks like from an old
process, and is allowed: docs/DEPLOY.md, Upgrades.
"""

from functools import cache

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

NAMED_AT_MOST = 5


@cache
def migrations_on_disk() -> tuple[tuple[tuple[str, str], tuple[tuple[str, str], ...]], ...]:
    """Every migration this code has, in the order migrate applies them, each with the migrations it
    replaces (a squash). Read once per process: the files do not change under a running process."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    ordered: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for leaf in loader.graph.leaf_nodes():
        for key in loader.graph.forwards_plan(leaf):
            ordered.setdefault(key, tuple(loader.graph.nodes[key].replaces))
    return tuple(ordered.items())


def unapplied_migrations(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """'app.name' of each migration on disk the database has not applied, in the order migrate would
    apply them. One query (two where the table may not exist yet)."""
    applied = MigrationRecorder(connections[using]).applied_migrations()
    return [f"{app}.{name}" for (app, name), replaces in migrations_on_disk()
            if (app, name) not in applied and not (replaces and all(key in applied for key in replaces))]


def unapplied_said(unapplied: list[str]) -> str:
    named = ", ".join(unapplied[:NAMED_AT_MOST])
    more = f" and {len(unapplied) - NAMED_AT_MOST} more" if len(unapplied) > NAMED_AT_MOST else ""
    return f"{len(unapplied)} migration(s) not applied: {named}{more}"


def schema_current_or_refuse(process: str) -> None:
    """Raise CommandError (the command exits 1 with the message) while a migration is unapplied."""
    unapplied = unapplied_migrations()
    if unapplied:
        raise CommandError(f"{process} refuses to start on an old schema ({unapplied_said(unapplied)}): "
                           "run manage.py migrate first.")
