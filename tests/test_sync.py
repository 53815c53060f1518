"""SQLite -> Chroma sync: signals, outbox, on_commit batching, reconcile and reindex."""

import shutil
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from gallery import storage
from gallery.models import Image, ImageVector, Tag
from gallery.vectors import load_one
from search.embeddings import get_embedder, model_name
from search.index import get_index
from search.models import IndexOutbox
from search.reconcile import reconcile
from search.sync import index_metadata
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)


def index_ids() -> set[int]:
    return {int(pk) for pk in get_index().ids(model_name())}


def index_meta(pk: int) -> dict:
    return get_index().get(model_name(), [pk])[str(pk)][0]


def live_embedded_ids() -> set[int]:
    return set(Image.objects.live().filter(embedding_state="done").values_list("pk", flat=True))


@pytest.fixture
def library(tmp_path, ingest):
    write_library(tmp_path / "in", 6)
    report = ingest(tmp_path / "in")
    assert report.added == 6
    return list(Image.objects.order_by("pk"))


def test_ingested_photos_are_in_the_index_with_their_metadata(library):
    assert index_ids() == {image.pk for image in library}
    assert IndexOutbox.objects.count() == 0
    meta = index_meta(library[0].pk)
    assert meta["filename"] == library[0].original_name
    assert (
        meta["width"] == library[0].width and meta["format"] == "jpeg"
    )  # text is stored folded, as filters compare it
    stored = get_index().get(model_name(), [library[0].pk], with_vectors=True)[str(library[0].pk)][1]
    assert np.allclose(stored, load_one(library[0].pk), atol=1e-6)


def test_one_transaction_makes_one_batched_index_write(library, monkeypatch):
    calls = []
    original = type(get_index()).upsert
    monkeypatch.setattr(
        type(get_index()), "upsert", lambda self, *a, **k: calls.append(len(a[1])) or original(self, *a, **k)
    )
    with transaction.atomic():
        for image in library:
            image.metadata.category = "harbour"
            image.metadata.save()
    assert calls == [len(library)]


def test_metadata_edit_updates_index_without_embedding_again(library, monkeypatch):
    embedder = get_embedder()
    monkeypatch.setattr(embedder, "encode_pixels", lambda *a: pytest.fail("re-embedded on a metadata edit"))
    image = library[0]
    image.metadata.category = "landscape"
    image.metadata.taken_at = datetime(2021, 7, 1, tzinfo=UTC)
    image.metadata.save()
    image.metadata.tags.add(Tag.objects.create(name="alps"))
    meta = index_meta(image.pk)
    assert meta["category"] == "landscape"
    assert meta["year"] == 2021
    assert meta["tags"] == ["alps"]
    Tag.objects.get(name="alps").delete()
    assert "tags" not in index_meta(image.pk)


def test_delete_and_trash_remove_the_vector(library):
    library[0].delete()
    library[1].trashed_at = timezone.now()
    library[1].save()
    assert index_ids() == {image.pk for image in library[2:]}
    library[1].trashed_at = None
    library[1].save()
    assert library[1].pk in index_ids()


def test_rollback_leaves_no_vector_and_no_outbox_row(library):
    image = library[0]
    image.delete()
    assert image.pk not in index_ids()
    before = IndexOutbox.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        image.pk = None
        image.save()
        new_id = image.pk
        raise RuntimeError("boom")
    assert new_id not in index_ids()
    assert IndexOutbox.objects.count() == before
    # The next transaction is not confused by the discarded one.
    library[1].metadata.category = "after-rollback"
    library[1].metadata.save()
    assert index_meta(library[1].pk)["category"] == "after-rollback"


def test_crash_between_commit_and_index_write_is_finished_by_reconcile(library, monkeypatch, capsys):
    import search.sync

    def crash(*args, **kwargs):
        raise SystemExit("process killed")  # as if the process died after commit

    monkeypatch.setattr(search.sync, "sync_images", crash)
    deleted_id = library[1].pk
    with pytest.raises(SystemExit):
        with transaction.atomic():
            library[0].metadata.category = "late"
            library[0].metadata.save()
            library[1].delete()
    monkeypatch.undo()
    assert IndexOutbox.objects.count() == 2  # the work is still recorded
    assert deleted_id in index_ids()  # ...and not done
    call_command("reconcile")
    out = capsys.readouterr().out
    assert "interrupted index update(s) finished" in out
    assert index_ids() == live_embedded_ids()
    assert index_meta(library[0].pk)["category"] == "late"
    call_command("reconcile")
    assert "Nothing to fix." in capsys.readouterr().out


def test_reconcile_fixes_every_kind_of_difference(library, capsys):
    from gallery.models import Metadata

    def expected_meta(pk: int) -> dict:
        found = index_metadata(Image.objects.select_related("metadata").get(pk=pk))
        return {k: v for k, v in found.items() if v not in (None, "", [])}

    index = get_index()
    dimension = get_embedder().dimension
    index.upsert(model_name(), [999_999], np.ones((1, dimension), dtype=np.float32), [{"filename": "ghost"}])
    index.delete(model_name(), [library[0].pk])
    index.upsert(model_name(), [library[1].pk], load_one(library[1].pk)[None], [{"filename": "wrong", "format": "PNG"}])
    orphan = storage.write_atomic("originals/ab/" + "c" * 62 + ".jpg", b"orphan")
    Image.objects.filter(pk=library[2].pk).update(embedding_state="pending", embedding_model="")
    ImageVector.objects.filter(image_id=library[2].pk).delete()
    Metadata.objects.filter(pk=library[3].pk).update(category="bypassed")  # no signal: the outbox never heard

    result = reconcile()
    assert result.orphans_removed == 1
    assert result.missing_added >= 1
    assert result.metadata_fixed == 1  # the change that bypassed the outbox, against the record of what was written
    assert index_meta(library[3].pk) == expected_meta(library[3].pk) and index_meta(library[3].pk)["category"]
    assert result.orphan_files == 1 and not orphan.exists()
    assert result.embedded == 1
    assert index_ids() == live_embedded_ids() == {image.pk for image in library}
    # An entry changed in the index itself (a restored backup) matches its record: only --deep reads it back.
    assert index_meta(library[1].pk) != expected_meta(library[1].pk)
    assert reconcile().clean
    assert reconcile(deep=True).metadata_fixed == 1
    assert index_meta(library[1].pk) == expected_meta(library[1].pk)
    assert reconcile().clean and reconcile(deep=True).clean


def test_reconcile_reads_back_entries_written_before_their_records_and_records_them(library):
    from search.models import IndexedEntry

    IndexedEntry.objects.all().delete()  # a library indexed before the records existed
    index = get_index()
    index.upsert(model_name(), [library[1].pk], load_one(library[1].pk)[None], [{"filename": "wrong", "format": "PNG"}])
    assert reconcile().metadata_fixed == 1  # read back, since nothing says what was written
    assert set(IndexedEntry.objects.values_list("image_id", flat=True)) == {image.pk for image in library}
    assert reconcile().clean


def test_photos_stored_without_embeddings_are_embedded_by_reconcile(tmp_path, ingest):
    write_library(tmp_path / "later", 3)
    report = ingest(tmp_path / "later", embed=False)
    assert report.added == 3
    assert Image.objects.filter(embedding_state="pending").count() == 3
    assert index_ids() == set()
    result = reconcile()
    assert result.embedded == 3
    assert index_ids() == live_embedded_ids()
    assert len(index_ids()) == 3


def test_reindex_rebuilds_a_lost_index_with_identical_results(library, settings, capsys):
    from search.python_api import find_similar

    before = [(r["id"], r["similarity"]) for r in find_similar(query_text="red car at night", top_k=6)]
    get_index().refresh()
    shutil.rmtree(settings.IMGSIM_INDEX["OPTIONS"]["path"])
    from search.index import get_index as cached

    cached.cache_clear()
    call_command("reindex", "--no-progress")
    assert "Indexed 6 vectors" in capsys.readouterr().out
    after = [(r["id"], r["similarity"]) for r in find_similar(query_text="red car at night", top_k=6)]
    assert [pk for pk, _ in after] == [pk for pk, _ in before]
    assert np.allclose([s for _, s in after], [s for _, s in before], atol=1e-5)
