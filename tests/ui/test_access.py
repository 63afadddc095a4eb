import pytest

from tests.ui.records import make_execution

pytestmark = pytest.mark.django_db

PAGES = ["/ui/", "/ui/executions/", "/ui/executions/1/", "/ui/signals/"]


@pytest.mark.parametrize("url", PAGES)
def test_it_sends_an_anonymous_visitor_to_the_login_page(client, url):
    make_execution(1)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_it_sends_a_logged_out_poll_to_the_login_page_in_full(client):
    response = client.get("/ui/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/ui/"
    assert response.content == b""


def test_it_leads_the_site_root_to_the_dashboard(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/ui/"


def test_it_renders_the_login_page(client):
    response = client.get("/accounts/login/?next=/ui/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_it_logs_a_trader_in_to_the_dashboard(client, trader):
    response = client.post("/accounts/login/", {"username": "trader", "password": "a-trader-password"})
    assert response.status_code == 302
    assert response["Location"] == "/ui/"
    assert client.get("/ui/").status_code == 200


def test_it_logs_out_back_to_the_login_page(trader_client):
    response = trader_client.post("/accounts/logout/", {"next": "/accounts/login/"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert trader_client.get("/ui/").status_code == 302
