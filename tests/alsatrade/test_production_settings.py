"""Production hardening: debug never meets real money, the proxy header and HSTS's farther-reaching
parts are opt-in, and `check --deploy` is clean with the settings docs/CONFIGURATION.md gives."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.alsatrade.test_settings import start

ROOT = Path(__file__).resolve().parents[2]
# The production example of docs/CONFIGURATION.md.
DOCUMENTED_PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "p" * 10 + "-a-production-secret-key-of-fifty-or-more-characters-0123456789",
    "ALLOWED_HOSTS": "trade.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://trade.example.com",
    "DATABASE_URL": "postgres://alsatrade:password@127.0.0.1:5432/alsatrade",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECURE_PROXY_SSL_HEADER": "1",
    "EXCHANGE": "binance",
    "BINANCE_API_KEY": "key-0123456789",
    "BINANCE_API_SECRET": "secret-0123456789",
    "BINANCE_USE_TESTNET": "0",
    "WEBHOOK_PASSPHRASE": "a-long-webhook-passphrase-0123456789",
    "WEBHOOK_ALLOWED_IPS": "tradingview",
    "WEBHOOK_TRUSTED_PROXIES": "127.0.0.1",
    "HEALTH_TOKEN": "health-token-0123456789abcdef",
}
SHOW = "import django; django.setup(); from django.conf import settings as s; "


def deploy_check(env: dict) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE" and k not in DOCUMENTED_PRODUCTION}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**inherited, **env}, capture_output=True, text=True, timeout=60,
    )


def test_it_passes_check_deploy_with_the_documented_production_settings():
    result = deploy_check(DOCUMENTED_PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_it_passes_check_deploy_with_hsts_preload_opted_in():
    result = deploy_check({**DOCUMENTED_PRODUCTION, "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1", "SECURE_HSTS_PRELOAD": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_it_refuses_debug_with_real_money():
    result = start({"DEBUG": "1", "EXCHANGE": "binance", "BINANCE_USE_TESTNET": "0", "BINANCE_API_KEY": "k",
                    "BINANCE_API_SECRET": "s"})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last
    assert all(name in last for name in ("DEBUG", "EXCHANGE", "BINANCE_USE_TESTNET"))


@pytest.mark.parametrize("env", [
    {"DEBUG": "1", "EXCHANGE": "binance", "BINANCE_USE_TESTNET": "1", "BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"},
    {"DEBUG": "1", "EXCHANGE": "paper", "BINANCE_USE_TESTNET": "0"},
])
def test_it_allows_debug_without_real_money(env):
    result = start(env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("env, header", [
    ({}, "None"),
    ({"SECURE_PROXY_SSL_HEADER": "1"}, "('HTTP_X_FORWARDED_PROTO', 'https')"),
    ({"WEBHOOK_TRUSTED_PROXIES": "10.0.0.0/8"}, "('HTTP_X_FORWARDED_PROTO', 'https')"),
    ({"WEBHOOK_TRUSTED_PROXIES": "10.0.0.0/8", "SECURE_PROXY_SSL_HEADER": "0"}, "None"),
])
def test_it_believes_the_proxy_header_only_when_a_proxy_is_declared(env, header):
    result = start({"DEBUG": "1", **env}, SHOW + "print(s.SECURE_PROXY_SSL_HEADER)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == header


@pytest.mark.parametrize("env, expected", [
    ({}, "False False"),
    ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "1", "SECURE_HSTS_PRELOAD": "yes"}, "True True"),
])
def test_it_makes_hsts_subdomains_and_preload_opt_in(env, expected):
    result = start({**DOCUMENTED_PRODUCTION, **env}, SHOW + "print(s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_it_refuses_a_health_token_too_short_to_be_secret():
    result = start({"DEBUG": "1", "HEALTH_TOKEN": "short"})
    assert result.returncode != 0 and "HEALTH_TOKEN" in result.stderr.strip().splitlines()[-1]
