"""Migration tests: a database built at an old schema, rows written with that schema's models,
migrated, and read back. django-test-migrations' `migrator` drops every table first and migrates to
the newest schema after the test."""

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState
from django_test_migrations.migrator import Migrator

Target = tuple[str, str | None]

# The project's apps at the first release (2026-11-24, commit 17d61fa; CHANGELOG.md).
FIRST_RELEASE: list[Target] = [("trading", "0002_schedules"), ("preferences", "0001_initial"),
                               ("analytics", "0001_initial"), ("notifications", None)]


def newest(app: str | None = None) -> list[Target]:
    """The newest migration of `app` (of every app when None) on disk."""
    return [key for key in MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes(app)]


def schema_at(migrator: Migrator, targets: list[Target]) -> ProjectState:
    """A fresh database with exactly `targets` applied for their apps (None: none of the app's) and
    what they depend on; other apps as far as the full plan goes before them."""
    migrator.apply_initial_migration(targets)
    # apply_initial_migration stops the full plan at the last target: other listed apps may be past
    # theirs by then. Migrating to the targets takes those back.
    migrator.apply_tested_migration(targets)
    # (The state Django returns after unapplying in several apps at once can hold a later migration's
    # fields: the one read from what is applied is exact.)
    return schema_now()


def schema_now() -> ProjectState:
    """The models as the migrations the database has applied define them."""
    loader = MigrationLoader(connection)
    return loader.project_state(list(loader.applied_migrations))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that builds a schema from nothing takes seconds (tens on PostgreSQL): slow."""
    for item in items:
        if "migrator" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fresh_adapter():
    """The exchange adapter caches per process; a test's settings choose a new one."""
    from trading.exchange import reset_exchange

    reset_exchange()
    yield
    reset_exchange()
