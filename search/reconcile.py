"""Repairing and rebuilding the index from SQLite."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gallery import storage
from gallery import vectors as stored_vectors
from gallery.models import Image
from gallery.planner import refresh_statistics
from gallery.services import sources_check
from imgsim_site.heap import collector_paused
from search.embeddings import model_name
from search.models import IndexedEntry
from search.stopping import stop_requested
from search.sync import (
    SyncReport,
    among,
    index_metadata_of,
    indexable,
    metadata_digest,
    process_outbox,
    reading_index,
    record_written,
    stored_form,
    sync_images,
    usable_vectors,
    writing_index,
)

CHUNK = 2000


@dataclass
class ReconcileResult:
    outbox_synced: int = 0
    embedded: int = 0
    embed_failed: list[tuple[int, str]] = field(default_factory=list)
    still_pending: int = 0
    missing_added: int = 0
    orphans_removed: int = 0
    metadata_fixed: int = 0
    orphan_files: int = 0
    orphan_files_deleted: bool = True
    model_error: str = ""
    files_missing: list[str] = field(default_factory=list)  # in-place photos whose file is gone
    files_back: int = 0

    @property
    def clean(self) -> bool:
        return not any(
            (
                self.outbox_synced,
                self.embedded,
                self.embed_failed,
                self.missing_added,
                self.orphans_removed,
                self.metadata_fixed,
                self.orphan_files,
                self.files_missing,
                self.files_back,
            )
        )

    def lines(self) -> list[str]:
        rows = [
            (self.outbox_synced, "interrupted index update(s) finished"),
            (self.embedded, "photo(s) embedded"),
            (len(self.embed_failed), "photo(s) could not be embedded (see the admin's failed filter)"),
            (self.missing_added, "vector(s) missing from the index added"),
            (self.orphans_removed, "vector(s) without a live photo removed"),
            (self.metadata_fixed, "index entr(ies) with stale metadata updated"),
            (self.orphan_files, "orphan file(s) in storage " + ("deleted" if self.orphan_files_deleted else "found")),
            (self.still_pending, "photo(s) still wait for embeddings"),
            (self.files_back, "in-place photo(s) whose file is back, searchable again"),
        ]
        lines = [f"{count} {label}" for count, label in rows if count]
        if self.files_missing:
            shown = "\n".join(f"  {path}" for path in self.files_missing[:20])
            more = f"\n  ... and {len(self.files_missing) - 20} more" if len(self.files_missing) > 20 else ""
            lines.append(
                f"{len(self.files_missing)} in-place photo(s) whose file is missing, hidden from search:\n"
                f"{shown}{more}\n"
                "  Put the files back, run `manage.py ingest --in-place FOLDER` on where they moved to, "
                "or move the photos to the trash (their pages say so too)."
            )
        return lines


@collector_paused()
def reconcile(
    *, embed: bool = True, retry_failed: bool = False, delete_orphan_files: bool = True, deep: bool = False
) -> ReconcileResult:
    """Make the index equal to what SQLite says, and storage hold only files rows own.

    Every wanted photo's entry must be there and no other; an entry's metadata is checked
    against the record of what sync wrote (IndexedEntry), or read back from the index
    when there is no record or deep is asked (after the index was restored from a backup).
    """
    result = ReconcileResult(orphan_files_deleted=delete_orphan_files)
    missing, result.files_back = sources_check()  # before the index is compared: these leave it
    result.files_missing = [photo.file for photo in missing]
    current = model_name()
    outbox = process_outbox(embed=embed)
    result.outbox_synced = outbox.upserted + outbox.deleted
    result.embedded += outbox.embedded
    result.embed_failed += outbox.failed
    result.model_error = outbox.model_error

    if retry_failed:
        Image.objects.filter(embedding_state=Image.Embedding.FAILED).update(
            embedding_state=Image.Embedding.PENDING, embedding_error=""
        )
    needing = (
        Image.objects.live()
        .filter(missing_since__isnull=True)
        .exclude(embedding_state=Image.Embedding.FAILED)
        .exclude(embedding_state=Image.Embedding.DONE, embedding_model=current)
    )
    if embed and not result.model_error:
        pending_ids = list(needing.values_list("pk", flat=True))
        for start in range(0, len(pending_ids), 64):
            report = sync_images(pending_ids[start : start + 64])
            result.embedded += report.embedded
            result.embed_failed += report.failed
            if report.model_error:
                result.model_error = report.model_error
                break
            if stop_requested():  # the worker is stopping: the rest waits for its next start
                break
    result.still_pending = needing.count()

    wanted = set(indexable().values_list("pk", flat=True))
    with reading_index() as index:
        in_index = {int(pk) for pk in index.present(current, sorted(wanted))}
        if index.count(current) > len(in_index):  # it holds photos SQLite does not want: list them all
            in_index = {int(pk) for pk in index.ids(current)}
    missing, orphans = wanted - in_index, in_index - wanted
    for ids in _chunks(sorted(missing) + sorted(orphans)):
        if stop_requested():  # the worker is stopping; its next start checks the index again
            break
        sync_images(ids, embed=False)
    result.missing_added, result.orphans_removed = len(missing), len(orphans)

    result.metadata_fixed = _fix_stale_metadata(sorted(wanted & in_index), deep=deep)
    result.orphan_files = _orphan_files(delete=delete_orphan_files)
    refresh_statistics()
    return result


def _chunks(ids: list[int], size: int = CHUNK):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _fix_stale_metadata(ids: list[int], *, deep: bool) -> int:
    current = model_name()
    stale = []
    for chunk in _chunks(ids):
        expected = {pk: stored_form(metadata) for pk, metadata in index_metadata_of(chunk).items()}
        rows = IndexedEntry.objects.filter(among(chunk, "image_id")).values_list("image_id", "digest")
        recorded = {} if deep else {pk: digest for pk, digest in rows if pk in expected}
        stale += [pk for pk, digest in recorded.items() if digest != metadata_digest(current, expected.get(pk, {}))]
        unknown = [pk for pk in chunk if pk not in recorded]
        if unknown:  # read back from the index; the entries that match are recorded for next time
            with reading_index() as index:
                stored = {int(pk): value for pk, (value, _) in index.get(current, unknown).items()}
            matching = [pk for pk in unknown if pk in expected and stored.get(pk) == expected[pk]]
            stale += sorted(set(unknown) - set(matching))
            record_written({pk: metadata_digest(current, expected[pk]) for pk in matching})
    for chunk in _chunks(sorted(stale)):
        sync_images(chunk, embed=False)
    return len(stale)


def _orphan_files(*, delete: bool) -> int:
    known = set(Image.objects.order_by().values_list("sha256", flat=True))  # from the hash index, not by date
    orphans = [path for sha256, path in storage.stored_files() if sha256 not in known]
    if delete:
        storage.delete_files(orphans)
    return len(orphans)


@dataclass(frozen=True)
class Reindexed:
    count: int  # photos in the new collection
    seconds: float
    resumed: int  # photos a stopped rebuild had written already, taken over


REINDEX_CHUNK = 5000


@collector_paused()
def reindex(*, on_progress: Callable[[int], None] | None = None, restart: bool = False) -> Reindexed:
    """Rebuild the collection from SQLite's vectors beside the old one, then swap.

    A photo whose stored vector is unusable (wrong length, not finite) is marked
    failed and left out; a failure half-way leaves the old collection serving, and
    the next reindex goes on from what it wrote (not with restart).
    """
    started = time.perf_counter()
    current = model_name()
    ids = list(indexable().values_list("pk", flat=True).order_by("pk"))
    count, written = 0, {}

    def batches():
        nonlocal count
        for chunk in _chunks(ids, REINDEX_CHUNK):
            vector_of = usable_vectors(stored_vectors.load(chunk), current, SyncReport())
            metadata_of = index_metadata_of(pk for pk in chunk if pk in vector_of)
            kept = [pk for pk in chunk if pk in metadata_of]
            written.update((pk, metadata_digest(current, metadata_of[pk])) for pk in kept)
            if kept:
                yield kept, np.stack([vector_of[pk] for pk in kept]), [metadata_of[pk] for pk in kept]
            count += len(kept)
            if on_progress:
                on_progress(len(kept))

    with writing_index() as index:
        resumed = index.rebuild(current, batches(), restart=restart)
    record_written(written, everything=True)
    return Reindexed(count, time.perf_counter() - started, resumed)
