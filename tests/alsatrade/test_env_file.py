"""The `.env` file: read from the project root when present, under the real environment; and
.env.example and docs/CONFIGURATION.md name every variable the settings read."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_VARIABLES = {"DEBUG", "SECRET_KEY", "EXCHANGE", "Q_WORKERS", "PAPER_BALANCE", "DJANGO_SETTINGS_MODULE"}
READ = re.compile(r"""\benv(?:_bool|_int|_decimal|_choice|_list|\.str|\.db|\.bool|\.int)\(\s*["']([A-Z0-9_]+)["']""")
# `manage.py serve` (make run) reads these itself.
SERVE_VARIABLES = {"HOST", "PORT", "WEB_CONCURRENCY"}


def project_copy(tmp_path: Path, env_file: str) -> Path:
    """The settings module alone in a project root of its own, so its BASE_DIR/.env is ours."""
    (tmp_path / "alsatrade").mkdir()
    (tmp_path / "alsatrade" / "__init__.py").write_text("")
    shutil.copy(ROOT / "alsatrade" / "settings.py", tmp_path / "alsatrade" / "settings.py")
    (tmp_path / ".env").write_text(env_file)
    return tmp_path


def settings_in(root: Path, env: dict, code: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    return subprocess.run(
        [sys.executable, "-c", "import alsatrade.settings as s; " + code],
        cwd=root, env={**clean, "PYTHONPATH": str(root), **env}, capture_output=True, text=True, timeout=60,
    )


def test_it_reads_the_env_file_and_lets_the_real_environment_win(tmp_path):
    root = project_copy(tmp_path, "# a comment\nDEBUG=1\nPAPER_BALANCE=1234\nQ_WORKERS=7\n")
    result = settings_in(root, {"Q_WORKERS": "3"}, "print(s.DEBUG, s.PAPER_BALANCE, s.Q_CLUSTER['workers'])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1234", "3"]


def test_it_names_a_bad_value_from_the_env_file(tmp_path):
    root = project_copy(tmp_path, "DEBUG=1\nQ_WORKERS=many\n")
    result = settings_in(root, {}, "")
    assert result.returncode != 0 and "Q_WORKERS" in result.stderr.strip().splitlines()[-1]


def test_it_keeps_the_env_file_out_of_other_settings_modules(tmp_path):
    # The test settings import the project's: a developer's .env (real keys) must not reach a test run.
    root = project_copy(tmp_path, "PAPER_BALANCE=1234\n")
    result = settings_in(root, {"DEBUG": "1", "DJANGO_SETTINGS_MODULE": "tests.settings"}, "print(s.PAPER_BALANCE)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10000"]


def test_it_starts_without_an_env_file(tmp_path):
    root = project_copy(tmp_path, "")
    (root / ".env").unlink()
    result = settings_in(root, {"DEBUG": "1"}, "print(s.EXCHANGE)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["paper"]


def variables_read() -> set[str]:
    return set(READ.findall((ROOT / "alsatrade" / "settings.py").read_text())) | SERVE_VARIABLES


def test_it_lists_every_variable_in_the_example_env_file():
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert len(variables_read()) > 30  # the pattern still finds the settings' reads
    assert variables_read() - listed == set()
    assert listed - variables_read() == set()


def test_it_gives_every_example_variable_a_comment():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^# [A-Z][A-Z0-9_]+=", line):
            above = lines[number - 1]
            assert above.startswith("# ") and not re.match(r"^# [A-Z][A-Z0-9_]+=", above), line


def test_it_documents_every_variable_in_the_configuration_guide():
    guide = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    assert {name for name in variables_read() if f"`{name}`" not in guide} == set()
