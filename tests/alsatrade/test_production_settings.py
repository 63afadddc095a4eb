"""Production hardening: debug never meets real money, the proxy header and HSTS's farther-reaching
parts are opt-in, and `check --deploy` is clean with the settings docs/CONFIGURATION.md gives."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings

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
BINANCE = {"EXCHANGE": "binance", "BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}


def last_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


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
    assert all(name in last for name in ("DEBUG", "EXCHANGE", "BINANCE_USE_TESTNET", "BINANCE_BASE_URL", "fapi.binance.com"))


@pytest.mark.parametrize("url", ["https://fapi.binance.com", "https://binance-proxy.example.com/"])
def test_it_refuses_debug_when_orders_go_anywhere_but_the_test_environment(url):
    """Decided by the host the orders go to: BINANCE_USE_TESTNET=1 does not make a production URL safe."""
    last = last_line(start({"DEBUG": "1", **BINANCE, "BINANCE_USE_TESTNET": "1", "BINANCE_BASE_URL": url}))
    assert "ImproperlyConfigured" in last and "BINANCE_BASE_URL" in last and url.split("/")[2] in last


@pytest.mark.parametrize("base, stream", [
    ("https://demo-fapi.binance.com", "wss://fstream.binancefuture.com/ws"),
    ("https://testnet.binancefuture.com", ""),
    ("http://127.0.0.1:9", "ws://127.0.0.1:9/ws"),
    ("http://localhost:9", "ws://[::1]:9/ws"),
])
def test_it_allows_debug_with_the_test_environment_or_this_machine_whatever_the_flag_says(base, stream):
    env = {"DEBUG": "1", **BINANCE, "BINANCE_USE_TESTNET": "0", "BINANCE_BASE_URL": base, "BINANCE_STREAM_URL": stream}
    result = start(env, SHOW + "print(s.BINANCE_BASE_URL)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == base


@pytest.mark.parametrize("name, url", [
    ("BINANCE_BASE_URL", "http://demo-fapi.binance.com"),
    ("BINANCE_BASE_URL", "http://127.0.0.1.example.com"),
    ("BINANCE_BASE_URL", "http://127.0.0.1@evil.example.com"),
    ("BINANCE_BASE_URL", "ftp://127.0.0.1"),
    ("BINANCE_BASE_URL", "demo-fapi.binance.com"),
    ("BINANCE_STREAM_URL", "ws://fstream.binance.com/ws"),
    ("BINANCE_STREAM_URL", "https://fstream.binance.com/ws"),
])
def test_it_refuses_an_exchange_url_in_the_clear_unless_it_stays_on_this_machine(name, url):
    last = last_line(start({"DEBUG": "1", name: url}))  # paper mode as well: a bad value is a bad value
    assert "ImproperlyConfigured" in last and last.split(":", 1)[1].strip().startswith(f"{name}=")


def test_it_wants_24_characters_of_passphrase_with_real_orders():
    last = last_line(start({"DEBUG": "1", **BINANCE, "WEBHOOK_PASSPHRASE": "p" * 23}))
    assert "WEBHOOK_PASSPHRASE has 23 characters" in last and "at least 24" in last
    assert start({"DEBUG": "1", **BINANCE, "WEBHOOK_PASSPHRASE": "p" * 24}).returncode == 0
    assert start({"DEBUG": "1", "EXCHANGE": "paper", "WEBHOOK_PASSPHRASE": "p" * 8}).returncode == 0


def test_check_deploy_warns_of_real_orders_from_any_address():
    def warned(**changes: object) -> bool:
        with override_settings(**changes):
            return "alsatrade.W001" in [message.id for message in run_checks(include_deployment_checks=True)]

    assert warned(EXCHANGE="binance", WEBHOOK_ALLOWED_IPS=[])
    assert not warned(EXCHANGE="binance", WEBHOOK_ALLOWED_IPS=["52.89.214.238"])
    assert not warned(EXCHANGE="paper", WEBHOOK_ALLOWED_IPS=[])


def test_check_deploy_names_the_open_webhook_with_otherwise_documented_settings():
    result = deploy_check({**DOCUMENTED_PRODUCTION, "WEBHOOK_ALLOWED_IPS": ""})
    assert result.returncode != 0
    assert "alsatrade.W001" in result.stderr and "WEBHOOK_ALLOWED_IPS" in result.stderr


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
