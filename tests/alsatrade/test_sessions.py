"""A login lasts SESSION_MAX_HOURS (12 by default, 1..168), not Django's two weeks: the session
cookie and the stored session both end then, and use does not renew them."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from tests.alsatrade.test_settings import start

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-0123"


@pytest.fixture
def trader(django_user_model):
    return django_user_model.objects.create_user("trader", password=PASSWORD)


def test_it_ends_a_login_after_twelve_hours(trader):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    client = Client()
    before = timezone.now()
    response = client.post("/accounts/login/", {"username": "trader", "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 12 * 3600
    session = Session.objects.get()
    assert before + timedelta(hours=12) <= session.expire_date <= timezone.now() + timedelta(hours=12)
    assert client.get("/ui/").status_code == 200
    assert Session.objects.get().expire_date == session.expire_date  # a page view does not renew it

    session.expire_date = timezone.now() - timedelta(seconds=1)  # twelve hours on
    session.save()
    response = client.get("/ui/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_reads_the_session_length_from_the_environment():
    code = "import django; django.setup(); from django.conf import settings as s; print(s.SESSION_COOKIE_AGE)"
    for hours, seconds in (("1", "3600"), ("168", "604800")):
        result = start({"DEBUG": "1", "SESSION_MAX_HOURS": hours}, code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [seconds]


@pytest.mark.parametrize("hours", ["0", "169", "half a day"])
def test_it_refuses_a_bad_session_length_naming_it(hours):
    result = start({"DEBUG": "1", "SESSION_MAX_HOURS": hours})
    assert result.returncode != 0
    assert "SESSION_MAX_HOURS" in result.stderr.strip().splitlines()[-1]
