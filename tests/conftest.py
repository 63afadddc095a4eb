import pytest

from tests.support.queue import clear_queue

pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture(autouse=True)
def _forget_mark_prices():
    """The worker remembers mark prices per process for a minute: not from one test to the next."""
    from trading.deciding import MARKS

    MARKS.clear()
    yield


@pytest.fixture(autouse=True)
def _empty_queue(request):
    """Each database test starts with an empty job queue (the Redis one outlives test transactions)."""
    marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    if marker or "db" in names or "transactional_db" in names:
        transactional = "transactional_db" in names or bool(marker and marker.kwargs.get("transaction"))
        request.getfixturevalue("transactional_db" if transactional else "db")
        clear_queue()
    yield


@pytest.fixture
def committed_client(client, django_capture_on_commit_callbacks):
    """A test client whose requests run their on-commit hooks, as a real commit would: the Redis
    broker queues a job on commit, which a test's wrapping transaction never reaches."""
    post = client.post

    def committed_post(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return post(*args, **kwargs)

    client.post = committed_post
    return client
