"""The analytics page at the calendar's edges answers, never 500 (found by the API fuzzing)."""

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


def test_it_shows_a_range_ending_on_the_last_day_of_the_calendar(client):
    client.force_login(User.objects.create_user("trader", password="x"))
    response = client.get("/ui/analytics/", {"period": "range", "start": "2026-01-01", "end": "9999-12-31"})
    assert response.status_code == 200


def test_it_shows_a_chosen_range_without_dates_as_all_time(client):
    client.force_login(User.objects.create_user("trader", password="x"))
    response = client.get("/ui/analytics/", {"period": "range"})
    assert response.status_code == 200
