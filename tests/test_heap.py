"""A web worker freezes what it holds (imgsim_site.heap); nothing else does."""

import gc
import importlib.util
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
    heap._serving = False
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


def test_a_web_worker_freezes_the_model_it_loads(as_web_worker):
    heap.serve()
    before = gc.get_freeze_count()
    get_embedder().encode_texts(["the first search of this worker"])
    assert gc.get_freeze_count() > before


@pytest.mark.django_db
def test_a_web_worker_freezes_once_its_first_search_has_imported_torch(as_web_worker, ingest, tmp_path):
    write_library(tmp_path / "photos", 3)
    ingest(tmp_path / "photos")  # the model is loaded before this process is a web worker
    query = np.ones(get_embedder().dimension, dtype=np.float32) / np.sqrt(get_embedder().dimension)
    heap.serve()
    column_cache.clear()  # whatever ingest built, the worker's first search builds its own
    before = gc.get_freeze_count()
    assert len(nearest(query, top_k=3)) == 3
    after_first = gc.get_freeze_count()
    assert after_first > before
    write_library(tmp_path / "more", 2, start=3)
    ingest(tmp_path / "more")
    column_cache.clear()  # built again, as after another process's index write
    assert len(nearest(query, top_k=5)) == 5
    assert gc.get_freeze_count() <= after_first  # once per process: nothing of later requests is frozen
