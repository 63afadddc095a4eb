pytest_plugins = ["tests.fakes.fixtures"]

import pytest

from tests.support.queue import clear_queue


@pytest.fixture(autouse=True)
def _empty_queue(request):
    """Each test starts with an empty job queue (the Redis one outlives test transactions)."""
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("django_db_setup")
        clear_queue()
    yield
