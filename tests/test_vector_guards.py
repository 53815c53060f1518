"""A vector of the wrong size never breaks the index; a rebuild that fails leaves the old index serving."""

import numpy as np
import pytest

from gallery import vectors as stored_vectors
from gallery.models import Image, ImageVector
from search.embeddings import get_embedder, model_name
from search.errors import IndexUnavailable, InvalidQuery
from search.index import get_index
from search.python_api import add_image, find_similar
from search.reconcile import reconcile, reindex
from tests.photos import write_library, write_photo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def library(tmp_path, ingest):
    write_library(tmp_path / "in", 6, size=(96, 72))
    ingest(tmp_path / "in")
    return list(Image.objects.order_by("pk"))


def test_a_custom_embedding_of_the_wrong_size_is_refused_before_anything_is_stored(library, tmp_path):
    photo = write_photo(tmp_path / "mine.jpg", 77)
    wrong = np.random.default_rng(0).random(get_embedder().dimension + 7)
    with pytest.raises(InvalidQuery, match=rf"has {len(wrong)} values; .* gives {get_embedder().dimension}"):
        add_image(photo, embedding=wrong)
    assert Image.objects.count() == len(library)
    with pytest.raises(InvalidQuery, match="values"):
        find_similar(query_embedding=wrong)
    right = np.random.default_rng(0).random(get_embedder().dimension)
    assert add_image(photo, embedding=right)["filename"] == "mine.jpg"


def test_one_bad_stored_vector_fails_that_photo_only(library):
    from search.models import IndexOutbox

    wrong = stored_vectors.to_bytes(np.ones(384, dtype=np.float32))
    synced, rebuilt = library[2], library[3]
    ImageVector.objects.filter(pk__in=[synced.pk, rebuilt.pk]).update(data=wrong)
    IndexOutbox.objects.create(image_id=synced.pk)  # its metadata changed, say: reconcile syncs it
    result = reconcile()
    assert [pk for pk, _ in result.embed_failed] == [synced.pk]
    assert reindex().count == len(library) - 2  # neither crashes
    for victim in (synced, rebuilt):
        victim.refresh_from_db()
        assert victim.embedding_state == Image.Embedding.FAILED and "384 values" in victim.embedding_error
    assert not {synced.pk, rebuilt.pk} & {int(pk) for pk in get_index().ids(model_name())}
    assert len(find_similar(query_image_id=library[0].pk, top_k=10, threshold=-1)) == len(library) - 3


def test_without_the_model_the_length_comes_from_the_latest_vectors_not_every_one(library, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from search import sync

    monkeypatch.setattr(sync, "_dimensions", {})
    monkeypatch.setattr(sync, "DIMENSION_SAMPLE", 4)
    dimension = get_embedder().dimension
    unloaded = type("Unloaded", (), {"loaded": False})()  # a web process that has not needed the model
    monkeypatch.setattr(sync, "get_embedder", lambda: unloaded)
    wrong = stored_vectors.to_bytes(np.ones(384, dtype=np.float32))
    ImageVector.objects.filter(pk__in=[library[0].pk, library[5].pk]).update(data=wrong)  # one among the latest
    with CaptureQueriesContext(connection) as ran:
        assert sync.expected_dimension(model_name()) == dimension
    (query,) = [q["sql"] for q in ran.captured_queries]
    assert "LIMIT 4" in query  # at a million photos, counting every length took seconds
    if connection.vendor == "sqlite":  # and sorting every vector to find the latest, 2.3 s
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {query}")
            assert "TEMP B-TREE" not in str(cursor.fetchall())


def test_a_rebuild_that_fails_half_way_leaves_the_old_index_serving(library, monkeypatch):
    from search import reconcile as reconcile_module

    before = find_similar(query_image_id=library[0].pk, top_k=5)

    def broken(image_ids):
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(reconcile_module, "index_metadata_of", broken)
    with pytest.raises(RuntimeError):
        reindex()
    assert get_index().count(model_name()) == len(library)
    assert find_similar(query_image_id=library[0].pk, top_k=5) == before


def test_a_collection_that_vanished_is_opened_again_and_search_says_503(library, settings):
    settings.IMGSIM_EXACT_SEARCH_LIMIT = 0  # searched through the index, as a large library is
    index = get_index()
    index.count(model_name())  # the handle is cached
    index.client().delete_collection(index.collection_name(model_name()))  # as a server that lost its data
    assert index.count(model_name()) == 0  # no crash: opened again, empty
    with pytest.raises(IndexUnavailable, match="holds 0 of the library's 6 photos"):
        find_similar(query_text="photo")
    reindex()
    assert len(find_similar(query_text="photo", top_k=10, threshold=-1)) == 6


def test_the_standalone_toolkit_refuses_a_vector_of_another_size(tmp_path):
    from search.standalone import ChromaDBBackend

    backend = ChromaDBBackend(collection_name="guarded")
    photo = write_photo(tmp_path / "p.jpg", 5)
    with pytest.raises(InvalidQuery, match="every vector of a collection must come from the same model"):
        backend.add_image(photo, embedding=np.random.default_rng(1).random(384))
    assert backend.get_stats()["total_images"] == 0


def test_a_persisted_collection_of_another_model_is_reopened_only_by_re_embedding(tmp_path):
    from search.standalone import ChromaDBBackend
    from tests.embedders import PixelEmbedder

    folder = tmp_path / "db"
    first = ChromaDBBackend(collection_name="holiday", persist_directory=folder)
    first.add_image(write_photo(tmp_path / "a.jpg", 1), metadata={"album": "summer"})
    first.index.refresh()
    with pytest.raises(InvalidQuery, match="holds vectors of .*tiny-clip, not of test/pixel-embedder"):
        ChromaDBBackend(collection_name="holiday", persist_directory=folder, embedder=PixelEmbedder())
    again = ChromaDBBackend(collection_name="holiday", persist_directory=folder, embedder=PixelEmbedder(), reembed=True)
    stats = again.get_stats()
    assert stats["total_images"] == 1 and stats["embedding_dimension"] == PixelEmbedder().dimension
    assert again.find_similar(query_image_path=tmp_path / "a.jpg", top_k=1)[0]["metadata"]["album"] == "summer"


def test_vectors_load_in_chunks_the_database_accepts(library, monkeypatch):
    """A million ids are more parameters than SQLite takes in one statement: they go in chunks."""
    everything = stored_vectors.load(image.pk for image in library)
    monkeypatch.setattr(stored_vectors, "LOAD_CHUNK", 3)
    chunked = stored_vectors.load([image.pk for image in library] + [10**9])
    assert chunked.keys() == everything.keys() and len(chunked) == len(library)
    assert all(np.array_equal(chunked[pk], everything[pk]) for pk in everything)


class Stopped(Exception):
    pass


def stop_after(photos: int):
    """An on_progress that stops the reindex once this many photos are written, as a kill would."""
    done = [0]

    def count(more: int) -> None:
        done[0] += more
        if done[0] >= photos:
            raise Stopped

    return count


@pytest.fixture
def stopped_reindex(library, monkeypatch):
    """A reindex of the library in chunks of two, stopped after it wrote the first four photos."""
    from search import reconcile as reconcile_module

    monkeypatch.setattr(reconcile_module, "REINDEX_CHUNK", 2)
    with pytest.raises(Stopped):
        reindex(on_progress=stop_after(4))
    return library


def test_a_stopped_reindex_goes_on_from_what_it_wrote(stopped_reindex, monkeypatch, settings):
    from chromadb.api.models.Collection import Collection

    from gallery.services import image_trash, tags_add

    library = stopped_reindex
    tagged, trashed = library[0], library[1]  # both written before it stopped, changed since
    tags_add(images=[tagged], names=["harbour"])
    image_trash(images=[trashed])
    inserted = []
    for method in ("add", "upsert"):
        original = getattr(Collection, method)

        def spy(self, *args, original=original, **kwargs):
            inserted.extend(int(pk) for pk in kwargs["ids"])
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Collection, method, spy)

    rebuilt = reindex()

    assert (rebuilt.resumed, rebuilt.count) == (4, 5)
    assert sorted(inserted) == [photo.pk for photo in library[4:]]  # the vectors it had not written, only
    held = get_index().get(model_name())
    assert sorted(int(pk) for pk in held) == [photo.pk for photo in library if photo != trashed]
    assert "harbour" in held[str(tagged.pk)][0]["tags"]
    assert reconcile(deep=True).clean
    settings.IMGSIM_EXACT_SEARCH_LIMIT = 0  # searched through the index, as a large library is
    own_vector = stored_vectors.load([tagged.pk])[tagged.pk]
    assert [hit["id"] for hit in find_similar(query_embedding=own_vector, top_k=1)] == [tagged.pk]


def test_the_reindex_command_says_it_went_on(stopped_reindex):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("reindex", "--no-progress", stdout=out)
    assert "Went on from a stopped reindex that had written 4 vectors." in out.getvalue()
    assert "Indexed 6 vectors" in out.getvalue()


def test_a_reindex_starts_over_when_asked_or_when_the_graph_parameters_changed(stopped_reindex, monkeypatch):
    assert reindex(restart=True).resumed == 0
    with pytest.raises(Stopped):
        reindex(on_progress=stop_after(2))
    monkeypatch.setitem(get_index().hnsw, "max_neighbors", 8)  # IMGSIM_HNSW_M changed since it stopped
    rebuilt = reindex()
    assert (rebuilt.resumed, rebuilt.count) == (0, len(stopped_reindex))
    assert get_index().count(model_name()) == len(stopped_reindex)


def test_a_stopped_reindex_goes_on_when_every_photo_it_wrote_was_trashed_since(stopped_reindex):
    from gallery.services import image_trash

    image_trash(images=stopped_reindex)
    rebuilt = reindex()
    assert (rebuilt.resumed, rebuilt.count) == (4, 0)
    assert get_index().count(model_name()) == 0
