import pytest

from tests.ui.records import make_execution
from trading.models import Signal

pytestmark = pytest.mark.django_db


def make_attempts():
    Signal.objects.create(status="rejected", http_status=401, reason="bad passphrase", source_ip="203.0.113.9")
    Signal.objects.create(status="rejected", http_status=400, reason="symbol is missing", source_ip="203.0.113.10")
    Signal.objects.create(status="rejected", http_status=403, reason="address not allowed", source_ip="198.51.100.7")
    Signal.objects.create(
        status="filtered", http_status=200, reason="strategy disabled", action="sell", symbol="ETHUSDT",
        strategy="Paused", idempotency_key="f1", source_ip="52.89.214.238",
    )
    Signal.objects.create(
        status="done", http_status=202, action="buy", symbol="BTCUSDT", idempotency_key="d1", duplicate_count=3,
        source_ip="52.89.214.238",
    )


def test_it_shows_an_empty_state_on_a_new_install(trader_client):
    response = trader_client.get("/ui/signals/")
    assert response.status_code == 200
    assert "No signals yet" in response.content.decode()


def test_it_lists_every_attempt_with_its_reason_and_address(trader_client):
    make_attempts()
    text = trader_client.get("/ui/signals/").content.decode()
    for words in ("bad passphrase", "symbol is missing", "address not allowed", "strategy disabled", "203.0.113.9",
                  "198.51.100.7", "HTTP 401", "HTTP 400", "HTTP 403", ">Filtered<"):
        assert words in text
    assert '<td class="opt num">3<br>' in text  # the duplicates


def test_it_links_a_signal_to_its_execution(trader_client):
    execution = make_execution(1)
    assert f'href="/ui/executions/{execution.pk}/"' in trader_client.get("/ui/signals/").content.decode()


def test_it_filters_by_status(trader_client):
    make_attempts()
    text = trader_client.get("/ui/signals/?status=rejected").content.decode()
    assert text.count('data-status="rejected"') == 3 and 'data-status="filtered"' not in text
    assert "No signals with this status." in trader_client.get("/ui/signals/?status=queued").content.decode()


def test_it_pages_200_signals_in_a_fixed_number_of_queries(trader_client, django_assert_max_num_queries):
    for n in range(120):
        make_execution(n)
    for n in range(80):
        Signal.objects.create(status="rejected", http_status=401, reason=f"bad passphrase {n}")
    with django_assert_max_num_queries(4):
        response = trader_client.get("/ui/signals/?page=2")
    assert response.content.decode().count('data-status="') == 50
