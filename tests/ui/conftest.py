import pytest


@pytest.fixture
def trader(django_user_model):
    return django_user_model.objects.create_user("trader", password="a-trader-password")


@pytest.fixture
def trader_client(client, trader):
    client.force_login(trader)
    return client
