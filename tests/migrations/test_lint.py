"""`make lint` refuses a migration that breaks processes still running the previous release, unless
it is marked as needing a stopping upgrade and the changelog says so (alsatrade/migration_lint.py).
Each case is a throwaway app in a temporary directory, linted by a subprocess on PostgreSQL."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection

from tests.migrations.conftest import newest
from tests.support.cluster import database_url

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(connection.vendor != "postgresql",
                                                   reason="the lint reads the SQL PostgreSQL would run")]

INITIAL = """
from django.db import migrations, models

class Migration(migrations.Migration):
    initial = True
    operations = [migrations.CreateModel(name="Thing", fields=[
        ("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=20)),
        ("size", models.IntegerField(null=True))])]
"""
UNSAFE = """
from django.db import migrations, models
{marker}
class Migration(migrations.Migration):
    dependencies = [("throwaway", "0001_initial")]
    operations = [
        migrations.RemoveField(model_name="thing", name="name"),
        migrations.AddField(model_name="thing", name="kind", field=models.CharField(max_length=10, default="x")),
        migrations.AddConstraint(model_name="thing",
                                 constraint=models.CheckConstraint(condition=models.Q(size__gte=0), name="size_positive")),
    ]
"""
# The same changes done so that old code keeps working: a column with a database default, a new table's
# own check constraint; the old column left in place.
SAFE = """
from django.db import migrations, models

class Migration(migrations.Migration):
    dependencies = [("throwaway", "0001_initial")]
    operations = [
        migrations.AddField(model_name="thing", name="kind",
                            field=models.CharField(max_length=10, default="x", db_default="x")),
        migrations.CreateModel(name="Other", fields=[("id", models.BigAutoField(primary_key=True)),
                                                     ("size", models.IntegerField())],
                               options={"constraints": [models.CheckConstraint(condition=models.Q(size__gte=0),
                                                                               name="other_size_positive")]}),
    ]
"""


def lint(tmp_path: Path, second: str, changelog: str = "") -> subprocess.CompletedProcess:
    app = tmp_path / "throwaway"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    (app / "migrations" / "0001_initial.py").write_text(INITIAL)
    (app / "migrations" / "0002_change.py").write_text(textwrap.dedent(second))
    (tmp_path / "lint_settings.py").write_text(
        "from tests.settings import *  # noqa\nINSTALLED_APPS = [*INSTALLED_APPS, 'throwaway']\n")
    # Only the throwaway app's second migration is new: the real apps' are all checked.
    baseline = [f"{app} {name}" for app, name in newest() if app in ("trading", "preferences", "analytics", "notifications")]
    (tmp_path / "baseline").write_text("\n".join([*baseline, "throwaway 0001_initial"]))
    (tmp_path / "CHANGELOG.md").write_text(changelog)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "lint_settings", "DATABASE_URL": database_url(),
           "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "alsatrade.migration_lint", "--baseline", str(tmp_path / "baseline"),
                           "--changelog", str(tmp_path / "CHANGELOG.md")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_it_refuses_a_migration_that_breaks_old_code(db, tmp_path):
    linted = lint(tmp_path, UNSAFE.format(marker=""))
    assert linted.returncode == 1, linted.stdout + linted.stderr
    assert "(throwaway, 0002_change)... ERR" in linted.stdout
    for finding in ("DROPPING columns (table: throwaway_thing, column: name)", "NOT NULL constraint on columns",
                    "ADDING a check constraint to an existing table"):
        assert finding in linted.stdout


def test_it_takes_the_same_changes_made_safe(db, tmp_path):
    linted = lint(tmp_path, SAFE)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "(throwaway, 0002_change)... OK" in linted.stdout


def test_it_takes_a_stopping_upgrade_only_when_the_changelog_says_so(db, tmp_path):
    marked = UNSAFE.format(marker='\nSTOPPING_UPGRADE = "the old code reads `name`"\n')
    unsaid = lint(tmp_path / "unsaid", marked, changelog="## 2027-01-05\n\nUpgrade: rolling\n\nthrowaway 0002_change\n")
    assert unsaid.returncode == 1, unsaid.stdout + unsaid.stderr
    assert ("throwaway 0002_change says STOPPING_UPGRADE, but no release in CHANGELOG.md that says 'Upgrade: stopping' "
            "names it") in unsaid.stdout

    said = lint(tmp_path / "said", marked, changelog="## 2027-01-05\n\nUpgrade: stopping\n\nMigrations: throwaway 0002_change\n")
    assert said.returncode == 0, said.stdout + said.stderr
    assert "(throwaway, 0002_change)... OK (ignored)" in said.stdout


def test_it_passes_this_projects_migrations(db):
    """The real baseline and changelog: preferences 0007 widens a column and a constraint, and says why
    that is safe (ROLLING_SAFE)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url()}
    linted = subprocess.run([sys.executable, "-m", "alsatrade.migration_lint"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "(preferences, 0007_sizing_and_protections)... OK (ignored)" in linted.stdout
