"""A web worker freezes what it holds (imgsim_site.heap); nothing else does."""

import gc
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from imgsim_site import heap
from search.columns import column_cache
from search.embeddings import get_embedder
from search.query import nearest
from tests.photos import write_library


@pytest.fixture
def as_web_worker():
    """Undo what a test that plays a web worker froze, so the rest of the run collects as before."""
    yield
    heap._settled.clear()
    gc.unfreeze()


def _gunicorn_settings():
    spec = importlib.util.spec_from_file_location("gunicorn_settings", Path(__file__).parents[1] / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_outside_a_web_worker_nothing_is_frozen():
    get_embedder().encode_texts(["a model loaded in a test or a command"])
    heap.settle("model")
    assert gc.get_freeze_count() == 0


def test_a_gunicorn_worker_freezes_what_it_holds_once_set_up(as_web_worker):
    _gunicorn_settings().post_worker_init(SimpleNamespace(age=2))  # not the first: no embeddings to compute
    assert gc.get_freeze_count() > 0


def test_each_moment_freezes_once(as_web_worker, monkeypatch):
    freezes = []
    monkeypatch.setattr(heap, "gc", SimpleNamespace(collect=lambda: None, freeze=lambda: freezes.append(1)))
    heap.settle("model")
    assert freezes == []  # not a web worker yet
    heap.serve()
    heap.settle("search")
    heap.settle("search")  # a column rebuild: what requests in flight hold is not frozen again
    heap.settle("model")
    assert len(freezes) == 3  # start, search, model


@pytest.mark.django_db
def test_loading_the_model_and_a_first_search_are_moments_to_freeze(monkeypatch, ingest, tmp_path):
    write_library(tmp_path / "photos", 3)
    ingest(tmp_path / "photos")
    get_embedder.cache_clear()  # the next use loads the model again
    moments = []
    monkeypatch.setattr(heap, "settle", moments.append)
    query = get_embedder().encode_texts(["a photo"])[0]
    assert "model" in moments
    column_cache.clear()  # whatever ingest built: the worker's first search builds its own
    assert len(nearest(np.asarray(query), top_k=3)) == 3
    assert "search" in moments and "torch" in sys.modules  # imported before the freeze, not after it


def test_a_pause_of_the_collector_ends_with_the_last_of_nested_or_concurrent_ones():
    import threading

    assert gc.isenabled()
    inside, go_on = threading.Event(), threading.Event()

    def other_job():
        with heap.collector_paused():
            inside.set()
            go_on.wait(timeout=30)

    job = threading.Thread(target=other_job)
    with heap.collector_paused():
        job.start()
        assert inside.wait(timeout=30)
        with heap.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other job still runs
    go_on.set()
    job.join(timeout=30)
    assert gc.isenabled()


def test_a_pause_leaves_a_collector_someone_else_disabled_disabled():
    gc.disable()
    try:
        with heap.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.django_db
def test_reconcile_and_reindex_run_without_the_collectors_passes_and_give_them_back(monkeypatch, ingest, tmp_path):
    """Their lists of every id in the library were walked by each full pass: a fifth of a reconcile at a million."""
    from search import reconcile as module

    write_library(tmp_path / "in", 3)
    ingest(tmp_path / "in")
    seen = []
    original = module.index_metadata_of
    monkeypatch.setattr(module, "index_metadata_of", lambda ids: seen.append(gc.isenabled()) or original(ids))
    module.reconcile()
    assert module.reindex().count == 3
    assert seen == [False, False] and gc.isenabled()
