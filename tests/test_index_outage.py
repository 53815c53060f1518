"""Writes made while the index is down reach search seconds after it is back, and users are told meanwhile."""

import time

import pytest
from django.core.management import call_command

from gallery import background
from gallery.models import Image
from search import sync
from search.embeddings import model_name
from search.errors import IndexUnavailable
from search.index import get_index
from search.models import IndexOutbox
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def index_down(monkeypatch):
    """The index refuses writes until the test says it is back."""
    real = sync.writing_index
    state = {"down": True}

    def writing_index():
        if state["down"]:
            raise IndexUnavailable("Cannot open the Chroma server at http://chroma:8000: connection refused")
        return real()

    monkeypatch.setattr(sync, "writing_index", writing_index)
    return state


def test_ingest_says_what_is_not_searchable_and_the_outbox_is_retried_when_the_index_is_back(
    tmp_path, index_down, settings, capsys
):
    settings.IMGSIM_INDEX_RETRY_SECONDS = 120
    write_library(tmp_path / "in", 5, size=(96, 72))
    call_command("ingest", str(tmp_path / "in"), "--no-progress")
    err = capsys.readouterr().err
    assert "5 photo(s) are stored but not searchable yet" in err
    assert IndexOutbox.objects.exists() and "outbox-retry" in background.running()
    index_down["down"] = False  # the server is back
    deadline = time.monotonic() + 60
    while IndexOutbox.objects.exists() and time.monotonic() < deadline:  # polled, not slept
        time.sleep(0.1)
    assert not IndexOutbox.objects.exists(), "the retry did not drain the outbox within a minute"
    assert get_index().count(model_name()) == Image.objects.count() == 5
    while background.running().get("outbox-retry"):
        time.sleep(0.05)  # let the thread notice there is nothing left


def test_a_chroma_server_that_lost_its_data_is_noticed_and_repaired_without_a_restart(
    tmp_path, ingest, settings, viewer_client, django_capture_on_commit_callbacks
):
    import shutil

    from search import tasks
    from search.python_api import find_similar
    from tests.conftest import free_port, start_chroma

    settings.IMGSIM_EXACT_SEARCH_LIMIT = 0  # searched through the index, as a large library is

    port, folder, log = free_port(), tmp_path / "chroma-server", tmp_path / "chroma.log"
    server = start_chroma(folder, port, log)
    try:
        settings.IMGSIM_INDEX = {**settings.IMGSIM_INDEX, "OPTIONS": {"url": f"http://127.0.0.1:{port}", "path": None}}
        get_index.cache_clear()
        write_library(tmp_path / "in", 4, size=(96, 72))
        ingest(tmp_path / "in")
        assert len(find_similar(query_text="photo", top_k=10, threshold=-1)) == 4
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder)  # the server's folder is lost; it comes back empty on the same address
        server = start_chroma(folder, port, log)
        response = viewer_client.get("/search/", {"q": "photo", "threshold": -1})
        assert response.status_code == 503 and "holds 0 of the library&#x27;s 4 photos" in response.content.decode()
        tasks.check_index.call(repeat=False)  # the repair the worker runs (and queues once the page noticed)
        assert len(find_similar(query_text="photo", top_k=10, threshold=-1)) == 4  # no restart of this process
    finally:
        server.terminate()
        server.wait(timeout=10)
