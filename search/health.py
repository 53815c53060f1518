"""What /healthz and the stats page report about the index, the model and pending work."""

from django.conf import settings
from django.db.models import Q

from gallery import background
from gallery.models import Image
from search.embeddings import get_embedder, model_name
from search.models import IndexedEntry, IndexOutbox


def index_count() -> tuple[int, str]:
    """How many vectors the index holds, and its mode; an embedded one answers from imgsim's record
    of what it wrote there (search.models.IndexedEntry).

    Any read of an embedded collection loads its whole graph into the asking process (2.5 GB
    at a million photos), which a web process showing the statistics or /healthz must not
    hold; a lost folder is seen, and `reconcile` and the worker's index check read the index.
    """
    from search.index import get_index
    from search.sync import reading_index

    index = get_index()
    if index.mode == "embedded":
        return (0 if index.folder_lost() else IndexedEntry.objects.count()), "embedded"
    with reading_index() as index:
        return index.count(model_name()), index.mode


def index_health() -> dict:
    try:
        count, mode = index_count()
        return {"ok": True, "mode": mode, "vectors": count}
    except Exception as error:
        return {"ok": False, "mode": "server" if settings.CHROMA_URL else "embedded", "detail": str(error)}


def model_health() -> dict:
    """The model, whether this process loaded it, and (once loaded) the numeric path of each tower."""
    embedder = get_embedder()
    health = {"name": model_name(), "loaded": embedder.loaded}
    if embedder.loaded and hasattr(embedder, "paths"):
        chosen = embedder.paths
        health["paths"] = {"image": chosen["image"], "text": chosen["text"], "source": chosen["source"]}
        for tower in ("image", "text"):
            if f"{tower}_measured" in chosen:
                health["paths"][f"{tower}_rates"] = chosen[f"{tower}_measured"]["rates"]
    return health


def queue_health() -> dict:
    from django_tasks_db.models import DBTaskResult

    return {
        "ok": True,
        "worker": settings.IMGSIM_WORKER,
        "index_outbox": IndexOutbox.objects.count(),
        "embeddings_pending": Image.objects.waiting_for_embedding().count(),
        "tasks_queued": DBTaskResult.objects.ready().count(),
        "tasks_running": DBTaskResult.objects.running().count(),
        "threads": background.running(),  # this process's own background work (gallery.background)
        "not_searchable": not_searchable(),
    }


def library_stats() -> dict:
    """What search adds to the library statistics: the index against SQLite, and the review queue."""
    from search.duplicates import duplicate_groups
    from search.sync import indexable

    expected = indexable().count()
    try:
        actual, error = index_count()[0], ""
    except Exception as failure:  # the page still shows everything else
        actual, error = None, str(failure)
    return {
        "index": {"expected": expected, "actual": actual, "in_sync": actual == expected, "error": error},
        "duplicate_groups": len(duplicate_groups()),
        "model_paths": model_paths(),
    }


def model_paths() -> str:
    """In words, the numeric path each tower runs on this machine, without loading the model."""
    from search.paths import PATHS, remembered

    setting = settings.IMGSIM_EMBEDDER.get("OPTIONS", {}).get("precision", "auto")
    if setting in PATHS:
        return f"{setting} for both towers (IMGSIM_PRECISION={setting})"
    record = remembered(model_name())
    if record is None:
        return "not measured on this machine yet (at the first use of the model, or: manage.py model_info)"
    rates = record["image_measured"]["rates"]
    faster = ", ".join(f"{path} {rate:g} images/s" for path, rate in rates.items())
    return f"image {record['image']}, text {record['text']}, measured on {record['cpu']} ({faster})"


def library_stats_version() -> str:
    """Changes whenever library_stats() may: an index write, a scan, a review decision."""
    from search.models import DuplicateScan, NotDuplicate
    from search.sync import current_generation

    latest_scan = DuplicateScan.objects.values_list("pk", flat=True).first() or 0
    return f"{current_generation()}.{latest_scan}.{NotDuplicate.objects.count()}"


def not_searchable(image_ids: list[int] | None = None, *, up_to: int | None = None) -> int:
    """Live photos stored but not in the index yet: an index update still to do, or an embedding to compute.

    For the whole library (every gallery page asks) two indexed counts are added up
    instead of one exact query that would scan every photo; a photo in both is rare.
    up_to: count no further than one beyond it: a library waiting for a new model's
    embeddings is slow to count, and every page would count it.
    """
    if image_ids is None:
        parts = [
            Image.objects.waiting_for_embedding().order_by(),
            IndexOutbox.objects.order_by().values("image_id").distinct(),
        ]
        if up_to is None:
            return sum(part.count() for part in parts)
        return min(sum(part[: up_to + 1].count() for part in parts), up_to + 1)
    return (
        Image.objects.live()
        .filter(pk__in=image_ids)
        .filter(Q(embedding_state=Image.Embedding.PENDING) | Q(pk__in=IndexOutbox.objects.values("image_id")))
        .count()
    )
