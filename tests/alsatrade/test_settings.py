"""Settings validation: a bad value stops start-up naming the variable. Each case imports the
settings in a fresh interpreter, because settings are read once per process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0", "SECRET_KEY": "k" * 20 + "-production-like-secret-key-0123456789abcdefXYZ", "ALLOWED_HOSTS": "trade.example.com"
}


def start(env: dict, code: str = "import django; django.setup()") -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "EXCHANGE", "WEBHOOK_PASSPHRASE", "DATABASE_URL", "REDIS_URL"}
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "alsatrade.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env, named",
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DEBUG": "1", "EXCHANGE": "foo"}, "EXCHANGE"),
        ({"DEBUG": "1", "EXCHANGE": "binance"}, "BINANCE_API_KEY"),
        ({"DEBUG": "1", "Q_WORKERS": "many"}, "Q_WORKERS"),
        ({"DEBUG": "1", "PAPER_BALANCE": "-5"}, "PAPER_BALANCE"),
        ({"DEBUG": "1", "BINANCE_RECV_WINDOW": "70000"}, "BINANCE_RECV_WINDOW"),
        ({"DEBUG": "1", "BINANCE_USE_TESTNET": "perhaps"}, "BINANCE_USE_TESTNET"),
        ({"DEBUG": "0"}, "SECRET_KEY"),
        ({"DEBUG": "1", "WEBHOOK_ALLOWED_IPS": "tradingview,not-an-ip"}, "WEBHOOK_ALLOWED_IPS"),
    ],
)
def test_it_refuses_a_bad_value_naming_the_variable(env, named):
    result = start(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr.strip().splitlines()[-1]


def test_it_starts_on_defaults_in_paper_mode_on_sqlite():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EXCHANGE, s.DATABASES['default']['ENGINE'], 'orm' in s.Q_CLUSTER, s.BINANCE_BASE_URL)"
    )
    result = start({"DEBUG": "1"}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["paper", "django.db.backends.sqlite3", "True", "https://demo-fapi.binance.com"]


def test_it_uses_the_redis_broker_and_production_url_when_told():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.Q_CLUSTER.get('redis'), 'orm' in s.Q_CLUSTER, s.BINANCE_BASE_URL)"
    )
    result = start({"DEBUG": "1", "REDIS_URL": "redis://127.0.0.1:6379/3", "BINANCE_USE_TESTNET": "0"}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis://127.0.0.1:6379/3", "False", "https://fapi.binance.com"]


def test_it_expands_the_tradingview_preset_of_allowed_addresses():
    code = "import django; django.setup(); from django.conf import settings as s; print(','.join(s.WEBHOOK_ALLOWED_IPS))"
    result = start({"DEBUG": "1", "WEBHOOK_ALLOWED_IPS": "tradingview, 10.0.0.9"}, code)
    assert result.stdout.strip() == "52.89.214.238,34.212.75.30,54.218.53.128,52.32.178.7,10.0.0.9"


def test_it_passes_the_deployment_checks_with_production_values():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}, **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("value, options", [(None, "True 5"), ("1", "True 5"), ("0", "None None")])
def test_postgresql_prepares_its_statements_unless_told_not_to(value, options):
    """DB_PREPARED_STATEMENTS: values bound by the server and hot statements prepared (docs/CONFIGURATION.md)."""
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "o = s.DATABASES['default'].get('OPTIONS', {}); print(o.get('server_side_binding'), o.get('prepare_threshold'))")
    env = {"DEBUG": "1", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"}
    if value is not None:
        env["DB_PREPARED_STATEMENTS"] = value
    result = start(env, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == options
