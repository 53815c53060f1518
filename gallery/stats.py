"""Library statistics: numbers and chart data, aggregated in SQL and cached until the library changes.

The cache key holds the library version (gallery.versions), which every committed
change to photos, metadata, tags or the trash bumps, and the version of what other
apps contribute (search: the index and the duplicate queue, through gallery.hooks),
so a cached answer is never stale. The cache is the data dir's ("shared"): every web
process, and one started later, finds the numbers another computed.
"""

import threading
from collections import Counter
from datetime import date, timedelta

from django.core.cache import caches
from django.db import connection
from django.db.models import BooleanField, CharField, Count, ExpressionWrapper, Q, Sum
from django.db.models.functions import Cast, Substr
from django.urls import reverse
from django.utils.http import urlencode

from gallery import background, hooks
from gallery.models import Image, ImageVector, Metadata, Tag
from gallery.versions import library_version

CACHE_SECONDS = 300
WIDTH_BUCKETS = [(0, 1000), (1000, 2000), (2000, 4000), (4000, 6000), (6000, None)]
# The first numbers of a library larger than this (none computed yet in its data dir) are counted in
# the background while the page says so, instead of the page waiting for them (a million photos: 2-5 s).
FIRST_IN_BACKGROUND_ABOVE = 100_000


_refreshing = threading.Lock()
# Why this process's last background count failed ("" when it did not): a page waiting for a
# library's first numbers shows it instead of counting on silently.
_last_failure = ""


def get_stats(*, charts: bool = True, allow_stale: bool = False) -> dict | None:
    """Return the library's numbers (the brief's total_images, avg_width, ...) and chart data.

    With allow_stale (the stats page), a request right after a change gets the
    previous numbers at once, marked "stale", while a background thread computes the
    new ones (~150 ms at 100k photos); without it the answer is always current.
    With allow_stale and no numbers ever computed for a library of more than
    FIRST_IN_BACKGROUND_ABOVE photos: None, while a background thread counts them.
    """
    key, latest_key = stats_key(charts), stats_key(charts, latest=True)
    found = caches["shared"].get(key)
    if found is not None:
        return found
    if allow_stale and (latest := caches["shared"].get(latest_key)) is not None:
        _refresh_in_background(key, latest_key, charts)
        latest_for, numbers = latest
        return numbers if latest_for == key else {**numbers, "stale": True}
    if allow_stale and Image.objects.order_by()[FIRST_IN_BACKGROUND_ABOVE:].exists():
        _refresh_in_background(key, latest_key, charts)
        return None
    found = _compute(charts=charts)
    _remember(key, latest_key, found)
    return found


def stats_key(charts: bool, *, latest: bool = False) -> str:
    """The numbers' key (latest: the last ones computed, whatever the versions). It names the database:
    the cache is the data dir's, which another database may use (each test worker's, a changed DATABASE_URL)."""
    versions = "latest" if latest else f"{library_version()}-{hooks.contributions_version()}"
    return f"imgsim-stats-{connection.settings_dict['NAME']}-{versions}-{charts}"


def last_failure() -> str:
    return _last_failure


def wait_for_refresh() -> None:
    """Return once no background refresh of the numbers is running (for tests and benchmarks)."""
    with _refreshing:
        pass


def _remember(key: str, latest_key: str, found: dict) -> None:
    caches["shared"].set(key, found, CACHE_SECONDS)
    # The latest numbers never expire: once any process has computed them, a page
    # never waits for the computation again (it is refreshed in the background).
    caches["shared"].set(latest_key, (key, found), None)


def _refresh_in_background(key: str, latest_key: str, charts: bool) -> None:
    if not _refreshing.acquire(blocking=False):
        return  # one refresh at a time; the next request picks its result up

    def work() -> None:
        global _last_failure
        try:
            _remember(key, latest_key, _compute(charts=charts))
            _last_failure = ""
        except Exception as error:  # logged by background.start; the page says it and tries again
            _last_failure = type(error).__name__  # its message may name servers or paths: only in the log
            raise
        finally:
            _refreshing.release()

    background.start("stats-refresh", work)


def _gallery(**params) -> str:
    return reverse("gallery:index") + "?" + urlencode(params)


def _image_groups() -> list[dict]:
    """One scan of the photos, grouped by format, embedding state, model and trash, with sums."""
    return list(
        Image.objects.annotate(live=ExpressionWrapper(Q(trashed_at__isnull=True), output_field=BooleanField()))
        .values("format", "embedding_state", "embedding_model", "live")
        .annotate(
            n=Count("pk"),
            bytes=Sum("byte_size"),
            widths=Sum("width"),
            heights=Sum("height"),
            **{
                f"w{low}": Count("pk", filter=Q(width__gte=low) & (Q(width__lt=high) if high else Q()))
                for low, high in WIDTH_BUCKETS
            },
        )
        .order_by()
    )


def _compute(*, charts: bool) -> dict:
    current = hooks.current_model_name()
    groups = _image_groups()
    live = [g for g in groups if g["live"]]
    trash = [g for g in groups if not g["live"]]
    total = sum(g["n"] for g in live)
    states, formats = {}, {}
    for g in live:
        states[g["embedding_state"]] = states.get(g["embedding_state"], 0) + g["n"]
        formats[g["format"]] = formats.get(g["format"], 0) + g["n"]
    sample = ImageVector.objects.values_list("data", flat=True).first()
    stats = {
        "total_images": total,
        "total_bytes": sum(g["bytes"] or 0 for g in live),
        "avg_width": round(sum(g["widths"] for g in live) / total, 1) if total else None,
        "avg_height": round(sum(g["heights"] for g in live) / total, 1) if total else None,
        "formats": dict(sorted(formats.items(), key=lambda item: -item[1])),
        "embedding_model": current,
        "embedding_dimension": len(sample) // 4 if sample else None,
        "embedded": states.get(Image.Embedding.DONE, 0),
        "pending": states.get(Image.Embedding.PENDING, 0),
        "failed": states.get(Image.Embedding.FAILED, 0),
        "trash_count": sum(g["n"] for g in trash),
        "trash_bytes": sum(g["bytes"] or 0 for g in trash),
        **hooks.contributed_stats(),  # search: the index and the duplicate queue
    }
    if charts:
        widths = {f"w{low}": sum(g[f"w{low}"] for g in live) for low, _ in WIDTH_BUCKETS}
        stats["charts"] = _charts(widths)
    return stats


def _metadata_counts() -> tuple[Counter, Counter, Counter]:
    """Count live photos per category, camera model and month taken, in one scan of the metadata.

    The scan reads the metadata table alone (no join to find trashed photos); the
    few trashed photos are counted by a second, indexed query and subtracted.
    """
    # The month as the first 7 characters of the stored UTC timestamp ("2024-05"): plain
    # SQL on both SQLite and Postgres, where TruncMonth runs a Python function per row
    # on SQLite (287 of 448 ms at 100k photos).
    month = Substr(Cast("taken_at", CharField()), 1, 7)
    fields = ("category", "camera_model", "month")
    every = Metadata.objects.annotate(month=month).values_list(*fields).annotate(n=Count("pk")).order_by()
    # Driven from the trash index (a subquery, not a join SQLite would plan as a scan).
    trashed = (
        Metadata.objects.filter(image_id__in=Image.objects.trashed().values("pk"))
        .annotate(month=month)
        .values_list(*fields)
        .annotate(n=Count("pk"))
        .order_by()
    )
    categories, cameras, months = Counter(), Counter(), Counter()
    for rows, sign in ((every, 1), (trashed, -1)):
        for category, camera, taken, n in rows:
            categories[category] += sign * n
            cameras[camera] += sign * n
            months[taken] += sign * n
    return categories, cameras, months


def _tag_counts() -> Counter:
    """Count live photos per tag name as _metadata_counts does: every membership, from the tag index
    alone, less the trashed photos' (a join of every membership to its photo took seconds at a million)."""
    through = Metadata.tags.through.objects
    every = through.values_list("tag_id").annotate(n=Count("id")).order_by()
    trashed = (
        through.filter(metadata_id__in=Image.objects.trashed().values("pk"))
        .values_list("tag_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_id = Counter()
    for rows, sign in ((every, 1), (trashed, -1)):
        for tag_id, n in rows:
            by_id[tag_id] += sign * n
    names = dict(Tag.objects.values_list("pk", "name"))
    return Counter({names[pk]: n for pk, n in by_id.items() if pk in names})


def _top(counts: Counter, limit: int = 10) -> list[tuple[str, int]]:
    rows = [(name, n) for name, n in counts.items() if name and n > 0]
    return sorted(rows, key=lambda row: (-row[1], row[0]))[:limit]


def _charts(widths: dict) -> dict:
    categories, cameras, months = _metadata_counts()
    per_month = []
    for month, count in sorted((m, n) for m, n in months.items() if m and n > 0)[-36:]:
        first = date(int(month[:4]), int(month[5:7]), 1)
        last = date(first.year + (first.month == 12), first.month % 12 + 1, 1) - timedelta(days=1)
        per_month.append(
            (first.strftime("%Y-%m"), count, _gallery(taken_from=first.isoformat(), taken_to=last.isoformat()))
        )
    tags = _top(_tag_counts())
    return {
        "per_month": per_month,
        "categories": [(name, n, _gallery(category=name)) for name, n in _top(categories)],
        "cameras": [(name, n, _gallery(camera=name)) for name, n in _top(cameras)],
        "tags": [(name, n, _gallery(tag=name)) for name, n in tags],
        "widths": [
            (
                f"{low}-{high - 1} px" if high else f"{low}+ px",
                widths[f"w{low}"],
                _gallery(**({"min_width": low} if low else {}), **({"max_width": high - 1} if high else {})),
            )
            for low, high in WIDTH_BUCKETS
        ],
    }
