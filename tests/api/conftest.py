"""Users and clients shared by the API tests."""

import pytest
from rest_framework.test import APIClient

from alsatrade.api_tokens import api_token_create
from tests.support.users import strategy_editor


@pytest.fixture
def reader(django_user_model):
    return django_user_model.objects.create_user("reader", password="a-reader-password")


@pytest.fixture
def api(reader) -> APIClient:
    """A client authenticated the way scripts are: `Authorization: Token …`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=reader)[1]}")
    return client


@pytest.fixture
def editor(django_user_model):
    return strategy_editor(django_user_model, is_staff=False)


@pytest.fixture
def editor_api(editor) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=editor)[1]}")
    return client
