"""`python -m alsatrade.migration_lint` (run by `make lint`): may each new migration ship in a
rolling upgrade, with processes of the previous release still running on the new schema
(docs/DEPLOY.md, Upgrades)?

A development tool (django-migration-linter is in requirements-dev.txt, not the runtime's). It
lints the SQL that each migration newer than docs/migrations-baseline runs on PostgreSQL, the
production database, and fails on what breaks old code: dropping or renaming a column or table,
NOT NULL without a database default, changing a column's type, a unique or check constraint added to
an existing table. On SQLite it says it is skipped: SQLite rebuilds a whole table for most changes,
which reads to a linter as a dropped table.

A migration may say, at module level:

- `STOPPING_UPGRADE = "why"`: it does break old code. Its findings are accepted, and CHANGELOG.md
  must name it (as `app name`) in a release whose section says `Upgrade: stopping`.
- `ROLLING_SAFE = {"CODE": "why"}`: those findings were read and are safe beside old code (a column
  widened, a constraint that admits every value the old one did).
"""

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from types import ModuleType

from django.db.migrations import Migration
from django.db.migrations.loader import MigrationLoader
from django_migration_linter import MigrationLinter
from django_migration_linter.sql_analyser.base import Check, CheckMode, CheckType
from django_migration_linter.sql_analyser.postgresql import PostgresqlAnalyser

BASE_DIR = Path(__file__).resolve().parent.parent
BASELINE = BASE_DIR / "docs" / "migrations-baseline"
CHANGELOG = BASE_DIR / "CHANGELOG.md"

Key = tuple[str, str]


def adds_check(statements: list[str], **_: object) -> bool:
    created = {match.group(1) for sql in statements if (match := re.match(r"CREATE TABLE (\S+)", sql))}
    added = (re.match(r"ALTER TABLE (\S+) ADD CONSTRAINT \S+ CHECK", sql) for sql in statements)
    return any(match is not None and match.group(1) not in created for match in added)


class ProjectAnalyser(PostgresqlAnalyser):
    """The linter's PostgreSQL checks, plus ADD_CHECK: a CHECK constraint added to a table that
    existed before refuses what old code may still write (the linter itself checks UNIQUE only)."""

    migration_checks = [
        *PostgresqlAnalyser.migration_checks,
        Check(code="ADD_CHECK", fn=adds_check, message="ADDING a check constraint to an existing table",
              mode=CheckMode.TRANSACTION, type=CheckType.ERROR),
    ]


ALL_CODES = [check.code for check in ProjectAnalyser(None).migration_checks]


def baseline_read(path: Path) -> dict[str, str]:
    """{app label: the newest migration already checked}, from lines `app name` (# comments)."""
    baseline: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            app, name = words
            baseline[app] = name
    return baseline


def stopping_releases(changelog: str) -> set[Key]:
    """The migrations named in a release section that says `Upgrade: stopping`."""
    named: set[Key] = set()
    for section in re.split(r"^## ", changelog, flags=re.MULTILINE)[1:]:
        if re.search(r"^Upgrade: stopping", section, flags=re.MULTILINE | re.IGNORECASE):
            named.update(re.findall(r"\b([a-z_]+) (\d{4}_\w+)", section))
    return named


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lint the migrations newer than the baseline for a rolling upgrade.")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--changelog", type=Path, default=CHANGELOG)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alsatrade.settings")
    import django

    django.setup()
    logging.getLogger("django_migration_linter").setLevel(logging.WARNING)  # not a line per sqlmigrate call
    from django.db import connection

    if connection.vendor != "postgresql":
        print(f"migration lint: skipped on {connection.vendor}: it reads the SQL PostgreSQL would run "
              "(DATABASE_URL=postgres://… make lint; CI runs it)")
        return 0
    return lint(baseline_read(args.baseline), args.changelog.read_text() if args.changelog.exists() else "")


def lint(baseline: dict[str, str], changelog: str) -> int:
    linter = MigrationLinter(no_cache=True)
    linter.sql_analyser_class = ProjectAnalyser
    stopping_named = stopping_releases(changelog)
    problems: list[str] = []
    for migration in migrations_after(linter.migration_loader, baseline):
        module = sys.modules[migration.__module__]
        stopping = getattr(module, "STOPPING_UPGRADE", "")
        # The linter's own way to accept a finding: its codes, per migration here.
        linter.exclude_migration_tests = ALL_CODES if stopping else list(rolling_safe(module))
        linter.lint_migration(migration)
        if stopping and (migration.app_label, migration.name) not in stopping_named:
            problems.append(f"{migration.app_label} {migration.name} says STOPPING_UPGRADE, but no release in "
                            "CHANGELOG.md that says 'Upgrade: stopping' names it")
    linter.print_summary()
    for problem in problems:
        print(problem)
    if linter.has_errors:
        print("A migration above breaks processes still running the previous release. Make it safe (docs/DEPLOY.md, "
              'Upgrades); or mark it STOPPING_UPGRADE = "why" and say so in CHANGELOG.md; or, for a finding that is '
              'safe after all, ROLLING_SAFE = {"CODE": "why"}.')
    return 1 if linter.has_errors or problems else 0


def rolling_safe(module: ModuleType) -> dict[str, str]:
    reviewed: dict[str, str] = getattr(module, "ROLLING_SAFE", {})
    unknown = set(reviewed) - set(ALL_CODES)
    if unknown:
        raise SystemExit(f"{module.__name__}: ROLLING_SAFE names no known check {sorted(unknown)}; known: {ALL_CODES}")
    return reviewed


def migrations_after(loader: MigrationLoader, baseline: dict[str, str]) -> list[Migration]:
    """This project's migrations past the baseline, in the order migrate applies them: those of every
    app not installed from a package, except the baseline's and their ancestors."""
    from django.apps import apps

    checked: set[Key] = set()
    for app, name in baseline.items():
        checked.update(loader.graph.forwards_plan((app, name)))
    local = {config.label for config in apps.get_app_configs() if not installed_from_package(config.path)}
    keys = [key for leaf in loader.graph.leaf_nodes() for key in loader.graph.forwards_plan(leaf)]
    return [loader.disk_migrations[key] for key in dict.fromkeys(keys) if key[0] in local and key not in checked]


def installed_from_package(path: str) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in Path(path).parts)


if __name__ == "__main__":
    sys.exit(main())
