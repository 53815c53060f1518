"""Keeping Chroma in step with SQLite.

SQLite is the source of truth, vectors included. Signals (search.signals) record
the ids of changed images in the outbox inside the writing transaction; after
commit `sync_images` embeds what still needs a vector (one batched model call),
then upserts or deletes those ids in Chroma (one batched write) and clears their
outbox rows. Every step is keyed by primary key, so repeating it is harmless:
`reconcile` simply runs it again over whatever is left or different.
"""

import contextlib
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from gallery import vectors as stored_vectors
from gallery.filters import fold_text
from gallery.hooks import is_embedding_deferred
from gallery.models import Image
from imgsim_site import heap
from search.columns import column_cache
from search.embeddings import get_embedder, model_name
from search.errors import ModelUnavailable
from search.index import get_index
from search.models import IndexedEntry, IndexGeneration, IndexOutbox
from search.stopping import stop_requested

log = logging.getLogger(__name__)

GENERATION_NAME = "chroma"


@dataclass
class SyncReport:
    embedded: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    upserted: int = 0
    deleted: int = 0
    left_pending: int = 0
    model_error: str = ""


def index_metadata(image: Image) -> dict:
    """Return the filterable fields that Chroma mirrors for one image (text folded, as filters compare it)."""
    return index_metadata_of([image.pk])[image.pk]


def among(ids: list[int], field: str) -> Q:
    """Rows whose field is one of these sorted ids, to be checked against them: a range when the
    ids are dense, as reconcile's chunks of the library are (an IN list of 2,000 cost Django
    alone ~5 ms to build, for every query of a million-photo reconcile), else the list."""
    if ids and ids[-1] - ids[0] < 2 * len(ids):
        return Q(**{f"{field}__gte": ids[0], f"{field}__lte": ids[-1]})
    return Q(**{f"{field}__in": ids})


def index_metadata_of(image_ids: Iterable[int]) -> dict[int, dict]:
    """index_metadata for many images at once: four queries of plain values for any number of photos.

    Model instances with their tags, albums and stars prefetched cost ~0.3 ms a photo
    (most of a reconcile's time at 100k photos); rows of values a few microseconds.
    """
    from django.contrib.auth import get_user_model

    from gallery.models import Album, Favourite, Metadata

    ids = sorted(set(image_ids))
    wanted = set(ids)
    lists: dict[str, dict[int, list[str]]] = {"tags": {}, "album": {}, "favourite_of": {}}
    sources = {
        "tags": Metadata.tags.through.objects.filter(among(ids, "metadata_id")).values_list("metadata_id", "tag__name"),
        "album": Album.photos.through.objects.filter(among(ids, "image_id")).values_list("image_id", "album__name"),
        "favourite_of": Favourite.objects.filter(among(ids, "image_id")).values_list(
            "image_id", f"user__{get_user_model().USERNAME_FIELD}"
        ),
    }
    for key, rows in sources.items():
        for image_id, name in rows:
            if image_id in wanted:
                lists[key].setdefault(image_id, []).append(name if key == "tags" else fold_text(name))
    rows = Image.objects.filter(among(ids, "pk")).values_list(
        "pk",
        "original_name",
        "sha256",
        "format",
        "width",
        "height",
        "metadata__category",
        "metadata__camera_make",
        "metadata__camera_model",
        "metadata__location",
        "metadata__taken_at",
        "metadata__latitude",
    )
    found = {}
    for pk, name, sha256, image_format, width, height, category, make, model, location, taken_at, latitude in rows:
        if pk not in wanted:
            continue
        found[pk] = {
            "filename": fold_text(name),
            "sha256": sha256,
            "format": fold_text(image_format),
            "width": width,
            "height": height,
            "category": fold_text(category or ""),
            "tags": sorted(lists["tags"].get(pk, [])),
            "album": sorted(lists["album"].get(pk, [])),
            "favourite_of": sorted(lists["favourite_of"].get(pk, [])),
            "camera_make": fold_text(make or ""),
            "camera_model": fold_text(model or ""),
            "location": fold_text(location or ""),
            "year": taken_at.year if taken_at else None,
            "taken_ts": int(taken_at.timestamp()) if taken_at else None,
            "has_gps": latitude is not None,
        }
    return found


def stored_form(metadata: dict) -> dict:
    """Metadata as the index keeps it: Chroma refuses empty values, so they are left out."""
    return {key: value for key, value in metadata.items() if value not in (None, "", [])}


def metadata_digest(model: str, metadata: dict) -> int:
    """A 63-bit digest of an index entry's model and metadata (IndexedEntry)."""
    raw = json.dumps([model, stored_form(metadata)], sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.blake2b(raw.encode(), digest_size=8).digest(), "big") >> 1


def record_written(digests: dict[int, int], *, everything: bool = False) -> None:
    """Remember what the index now holds for these photos, as {id: metadata_digest}
    (everything: for no others, after a rebuild)."""
    entries = [IndexedEntry(image_id=pk, digest=digest) for pk, digest in digests.items()]
    with transaction.atomic():
        if everything:
            IndexedEntry.objects.all().delete()
            IndexedEntry.objects.bulk_create(entries, batch_size=5000)
        else:
            IndexedEntry.objects.bulk_create(
                entries, batch_size=2000, update_conflicts=True, unique_fields=["image_id"], update_fields=["digest"]
            )


def indexable():
    """Live photos whose vector, from the configured model, belongs in the index (not those whose file is gone)."""
    return Image.objects.live().filter(
        embedding_state=Image.Embedding.DONE, embedding_model=model_name(), missing_since__isnull=True
    )


def current_generation() -> int:
    row = IndexGeneration.objects.filter(name=GENERATION_NAME).values_list("generation", flat=True).first()
    return row or 0


def _catch_up(index) -> None:
    if index.mode != "embedded":
        return
    generation = current_generation()
    if generation != index.seen_generation:
        if index.seen_generation is not None:
            index.refresh()
        index.seen_generation = generation


@contextlib.contextmanager
def reading_index():
    """Yield the index, caught up with what other processes wrote, under its read lock."""
    index = get_index()
    with index.reading():
        _catch_up(index)
        yield index


@contextlib.contextmanager
def writing_index():
    """Yield the index under its write lock; bump the generation afterwards so readers catch up."""
    index = get_index()
    with index.writing():
        _catch_up(index)
        yield index
        IndexGeneration.objects.get_or_create(name=GENERATION_NAME)
        IndexGeneration.objects.filter(name=GENERATION_NAME).update(generation=F("generation") + 1)
        index.seen_generation = current_generation()
        column_cache.expire()  # this process's own change is in its next search


def embed_images(images: list[Image], report: SyncReport) -> None:
    """Compute and store vectors for images that have none, in one batched model call."""
    if not images:
        return
    from gallery.decoding import open_for_embedding

    try:
        embedder = get_embedder()
        embedder.dimension  # loads the model, or raises ModelUnavailable
    except ModelUnavailable as error:
        report.model_error = str(error)
        report.left_pending += len(images)
        return
    decoded, pixels = [], []
    for image in images:
        try:
            pixels.append(embedder.preprocess(open_for_embedding(image)))
            decoded.append(image)
        except Exception as error:  # a file gone or unreadable fails that image only
            message = f"cannot read image for embedding: {error}"
            Image.objects.filter(pk=image.pk).update(embedding_state=Image.Embedding.FAILED, embedding_error=message)
            image.embedding_state = Image.Embedding.FAILED
            report.failed.append((image.pk, message))
    if not decoded:
        return
    vectors = embedder.encode_pixels(np.stack(pixels))
    name = embedder.model_name
    # QuerySet.update sends no signals: storing a vector must not schedule another sync.
    with transaction.atomic():
        stored_vectors.save({image.pk: vector for image, vector in zip(decoded, vectors)})
        Image.objects.filter(pk__in=[image.pk for image in decoded]).update(
            embedding_model=name, embedding_state=Image.Embedding.DONE, embedding_error=""
        )
    for image in decoded:
        image.embedding_model, image.embedding_state = name, Image.Embedding.DONE
    report.embedded += len(decoded)


def sync_images(image_ids: Iterable[int], *, embed: bool = True) -> SyncReport:
    """Bring the index entries of these images in line with SQLite; clear their outbox rows."""
    ids = sorted(set(image_ids))
    report = SyncReport()
    if not ids:
        return report
    last_outbox = IndexOutbox.objects.filter(image_id__in=ids).order_by("-pk").values_list("pk", flat=True).first()
    current_model = model_name()
    images = list(Image.objects.filter(pk__in=ids).select_related("metadata"))
    live = [image for image in images if image.trashed_at is None and image.missing_since is None]
    needs_vector = [
        image
        for image in live
        if image.embedding_state == Image.Embedding.PENDING
        or (image.embedding_state == Image.Embedding.DONE and image.embedding_model != current_model)
    ]
    if embed:
        embed_images(needs_vector, report)
    else:
        report.left_pending += len(needs_vector)
    done = [i for i in live if i.embedding_state == Image.Embedding.DONE and i.embedding_model == current_model]
    vector_of = usable_vectors(stored_vectors.load(image.pk for image in done), current_model, report)
    indexable = [image for image in done if image.pk in vector_of]
    indexable_ids = {image.pk for image in indexable}
    stale_ids = [pk for pk in ids if pk not in indexable_ids]
    metadata_of = index_metadata_of(image.pk for image in indexable)
    with writing_index() as index:
        if indexable:
            index.upsert(
                current_model,
                [image.pk for image in indexable],
                np.stack([vector_of[image.pk] for image in indexable]),
                [metadata_of[image.pk] for image in indexable],
            )
        if stale_ids:
            index.delete(current_model, stale_ids)
    record_written({image.pk: metadata_digest(current_model, metadata_of[image.pk]) for image in indexable})
    IndexedEntry.objects.filter(image_id__in=stale_ids).delete()
    report.upserted, report.deleted = len(indexable), len(stale_ids)
    if last_outbox is not None:
        IndexOutbox.objects.filter(image_id__in=ids, pk__lte=last_outbox).delete()
    return report


_dimensions: dict[str, int] = {}
DIMENSION_SAMPLE = 1000


def expected_dimension(model: str) -> int | None:
    """The vector length of a model: the loaded embedder's, or the most common among its latest stored vectors.

    A vector of another length (a caller's custom embedding of the wrong size) must
    never reach the index, where it would break every later write of the batch. The
    latest DIMENSION_SAMPLE vectors decide: counting every vector's length took seconds
    at a million photos, in the first write of every web process.
    """
    if model not in _dimensions:
        embedder = get_embedder()
        if embedder.loaded and embedder.model_name == model:
            _dimensions[model] = embedder.dimension
        else:
            from django.db.models.functions import Length

            # From the photos' side: SQLite walks them newest first (from the vectors' side it sorted them all).
            sizes = Counter(
                Image.objects.filter(embedding_model=model, vector__isnull=False)
                .order_by("-pk")
                .annotate(size=Length("vector__data"))
                .values_list("size", flat=True)[:DIMENSION_SAMPLE]
            )
            if not sizes:
                return None
            _dimensions[model] = sizes.most_common(1)[0][0] // 4
    return _dimensions[model]


def usable_vectors(vector_of: dict[int, np.ndarray], model: str, report: SyncReport) -> dict[int, np.ndarray]:
    """Keep the vectors of the model's length and finite; mark the others' photos failed, with the fix."""
    dimension = expected_dimension(model)
    bad = {
        pk: vector
        for pk, vector in vector_of.items()
        if (dimension is not None and len(vector) != dimension) or not np.isfinite(vector).all()
    }
    for pk, vector in bad.items():
        message = (
            f"stored vector has {len(vector)} values where {model} gives {dimension}, or is not finite; "
            "`python manage.py reconcile --retry-failed` embeds the photo again"
        )
        Image.objects.filter(pk=pk).update(embedding_state=Image.Embedding.FAILED, embedding_error=message)
        report.failed.append((pk, message))
        log.warning("photo %s: %s", pk, message)
    return {pk: vector for pk, vector in vector_of.items() if pk not in bad}


def process_outbox(*, batch_size: int = 256, embed: bool = True) -> SyncReport:
    """Sync every image named in the outbox, in batches of ids; return the combined report."""
    total = SyncReport()
    last_id = -1
    while True:
        ids = list(
            IndexOutbox.objects.filter(image_id__gt=last_id)
            .order_by("image_id")
            .values_list("image_id", flat=True)
            .distinct()[:batch_size]
        )
        if not ids or stop_requested():  # a stopping worker leaves the rest in the outbox
            return total
        merge_into(total, sync_images(ids, embed=embed))
        last_id = ids[-1]


def merge_into(total: SyncReport, report: SyncReport) -> None:
    total.embedded += report.embedded
    total.failed += report.failed
    total.upserted += report.upserted
    total.deleted += report.deleted
    total.left_pending += report.left_pending
    total.model_error = total.model_error or report.model_error


def index_writes_here() -> bool:
    """Whether this process writes its changes to the index, or leaves them to the worker.

    Any write to an embedded Chroma loads its whole graph into the writing process (2.6 GB
    at a million photos): with a worker, web processes leave every index write to it.
    Search does not wait for it (it reads SQLite and the vector file); a Chroma server
    is written at once, as its graph lives in the server, and commands write their own.
    """
    return not (settings.IMGSIM_WORKER and heap.web_worker() and get_index().mode == "embedded")


def embed_on_commit() -> bool:
    return settings.IMGSIM_EMBED_ON_COMMIT and not is_embedding_deferred()
