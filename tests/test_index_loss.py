"""Losing the Chroma folder: pages keep working, search says what to do, reindex restores identical results."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from search.errors import IndexUnavailable
from search.index import get_index
from search.python_api import find_similar
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)


def _results():
    return [(r["id"], round(r["similarity"], 5)) for r in find_similar(query_text="a photo", top_k=5)]


def test_deleted_index_folder_then_reindex(viewer_client, tmp_path, ingest, settings):
    settings.IMGSIM_EXACT_SEARCH_LIMIT = 0  # a library large enough to be searched through the index
    write_library(tmp_path / "in", 8)
    ingest(tmp_path / "in")
    before = _results()
    assert len(before) == 5
    shutil.rmtree(Path(settings.IMGSIM_INDEX["OPTIONS"]["path"]))
    get_index().refresh()  # what the next write by any process, or a restart, leads to
    # The statistics see the folder gone without opening the index (test_stats.py: never in a web process).
    assert "holds no vectors where SQLite expects 8" in viewer_client.get(reverse("gallery:stats")).content.decode()
    with pytest.raises(IndexUnavailable, match="manage.py reindex"):
        find_similar(query_text="a photo", top_k=5)
    assert viewer_client.get(reverse("gallery:index")).status_code == 200  # everything else keeps working
    image_id = before[0][0]
    assert viewer_client.get(reverse("gallery:detail", args=[image_id])).status_code == 200
    page = viewer_client.get(reverse("search:page") + "?q=a+photo")
    assert page.status_code == 503 and "manage.py reindex" in page.content.decode()
    response = viewer_client.post(reverse("api:search"), {"query": "a photo"}, content_type="application/json")
    assert response.status_code == 503 and "reindex" in response.json()["error"]

    from django.core.management import call_command

    call_command("reindex", "--no-progress")
    assert _results() == before  # identical results


def test_filtered_search_still_answers_without_the_index(tmp_path, ingest):
    """Selective filters are scored from SQLite's vectors: they need no Chroma at all."""
    write_library(tmp_path / "in", 4)
    ingest(tmp_path / "in")
    expected = find_similar(query_text="a photo", top_k=3, filter_metadata={"format": "JPEG"})
    shutil.rmtree(Path(settings.IMGSIM_INDEX["OPTIONS"]["path"]))
    get_index().refresh()
    assert find_similar(query_text="a photo", top_k=3, filter_metadata={"format": "JPEG"}) == expected


def test_a_small_library_is_searched_exactly_even_without_its_index(tmp_path, ingest):
    """Below IMGSIM_EXACT_SEARCH_LIMIT the stored vectors answer: a lost index costs nothing until reindex."""
    write_library(tmp_path / "in", 8)
    ingest(tmp_path / "in")
    before = _results()
    shutil.rmtree(Path(settings.IMGSIM_INDEX["OPTIONS"]["path"]))
    get_index().refresh()
    assert _results() == before


def test_hnsw_parameters_come_from_settings_and_reach_an_existing_collection(tmp_path):
    import numpy as np

    from search.index import ChromaIndex

    first = ChromaIndex(path=str(tmp_path / "chroma"), hnsw={"ef_search": 128, "max_neighbors": 24})
    first.upsert("m", [1, 2], np.eye(2, 8, dtype=np.float32), [None, None])
    assert first.collection("m").configuration_json["hnsw"]["ef_search"] == 128
    first.refresh()  # that process ends: two clients on one folder contend for Chroma's SQLite lock
    # A later start with a new ef_search (IMGSIM_HNSW_SEARCH_EF) changes the collection; the graph's
    # shape (M) stays until a reindex builds a new one.
    later = ChromaIndex(path=str(tmp_path / "chroma"), hnsw={"ef_search": 300})
    hnsw = later.collection("m").configuration_json["hnsw"]
    assert hnsw["ef_search"] == 300 and hnsw["max_neighbors"] == 24
    assert sorted(int(pk) for pk, _ in later.query("m", np.eye(1, 8, dtype=np.float32)[0], 2)) == [1, 2]
    later.refresh()
    rebuilt = ChromaIndex(path=str(tmp_path / "chroma"), hnsw={"max_neighbors": 32})
    rebuilt.rebuild("m", iter([([1, 2], np.eye(2, 8, dtype=np.float32), [None, None])]))
    hnsw = rebuilt.collection("m").configuration_json["hnsw"]
    assert hnsw["max_neighbors"] == 32 and hnsw["ef_search"] == 256  # the default


def test_a_collection_opens_when_chromas_database_was_locked_for_a_moment(tmp_path, monkeypatch, caplog):
    import numpy as np
    from chromadb.api.models.Collection import Collection
    from chromadb.errors import InternalError

    from search.index import ChromaIndex

    first = ChromaIndex(path=str(tmp_path / "chroma"), hnsw={"ef_search": 128})
    first.upsert("m", [1, 2], np.eye(2, 8, dtype=np.float32), [None, None])
    first.refresh()
    modify, refused = Collection.modify, []

    def locked_twice(self, *args, **kwargs):  # as SQLite refuses a write that would deadlock
        if len(refused) < 2:
            refused.append(1)
            raise InternalError("error returned from database: (code: 5) database is locked")
        return modify(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "modify", locked_twice)
    later = ChromaIndex(path=str(tmp_path / "chroma"), hnsw={"ef_search": 300})
    assert later.collection("m").configuration_json["hnsw"]["ef_search"] == 300
    assert len(refused) == 2 and "database is locked; trying again" in caplog.text
    assert sorted(int(pk) for pk, _ in later.query("m", np.eye(1, 8, dtype=np.float32)[0], 2)) == [1, 2]
