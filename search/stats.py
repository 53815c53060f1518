"""Library statistics: numbers and chart data, aggregated in SQL and cached until the library changes.

The cache key holds the index generation, which every change to photos, metadata,
tags or the trash bumps (search.sync), so a cached answer is never stale.
"""

from datetime import date, timedelta

from django.core.cache import cache
from django.db.models import Avg, CharField, Count, Q, Sum
from django.db.models.functions import Cast, Substr
from django.urls import reverse
from django.utils.http import urlencode

from gallery.models import Image, ImageVector, Metadata, Tag
from search.embeddings import model_name
from search.sync import current_generation, reading_index

CACHE_SECONDS = 300
WIDTH_BUCKETS = [(0, 1000), (1000, 2000), (2000, 4000), (4000, 6000), (6000, None)]


def get_stats(*, charts: bool = True) -> dict:
    """Return the library's numbers (the brief's total_images, avg_width, ...) and chart data."""
    key = f"imgsim-stats-{current_generation()}-{Image.objects.count()}-{charts}"
    found = cache.get(key)
    if found is None:
        found = _compute(charts=charts)
        cache.set(key, found, CACHE_SECONDS)
    return found


def _gallery(**params) -> str:
    return reverse("gallery:index") + "?" + urlencode(params)


def _compute(*, charts: bool) -> dict:
    live = Image.objects.live()
    # One scan for the totals and the width buckets, one for formats x embedding states.
    totals = live.aggregate(total=Count("pk"), bytes=Sum("byte_size"), mean_width=Avg("width"),
                            mean_height=Avg("height"), **{
        f"w{low}": Count("pk", filter=Q(width__gte=low) & (Q(width__lt=high) if high else Q()))
        for low, high in WIDTH_BUCKETS
    })
    states, formats = {}, {}
    for image_format, state, count in live.values_list("format", "embedding_state").annotate(n=Count("pk")).order_by():
        states[state] = states.get(state, 0) + count
        formats[image_format] = formats.get(image_format, 0) + count
    current = model_name()
    indexable = live.filter(embedding_state=Image.Embedding.DONE, embedding_model=current).count()
    try:
        with reading_index() as index:
            in_index, index_error = index.count(current), ""
    except Exception as error:  # the page still shows everything else
        in_index, index_error = None, str(error)
    sample = ImageVector.objects.values_list("data", flat=True).first()
    trash = Image.objects.trashed().aggregate(count=Count("pk"), bytes=Sum("byte_size"))
    from search.duplicates import duplicate_groups

    stats = {
        "total_images": totals["total"],
        "total_bytes": totals["bytes"] or 0,
        "avg_width": round(totals["mean_width"], 1) if totals["mean_width"] is not None else None,
        "avg_height": round(totals["mean_height"], 1) if totals["mean_height"] is not None else None,
        "formats": dict(sorted(formats.items(), key=lambda item: -item[1])),
        "embedding_model": current,
        "embedding_dimension": len(sample) // 4 if sample else None,
        "embedded": states.get(Image.Embedding.DONE, 0),
        "pending": states.get(Image.Embedding.PENDING, 0),
        "failed": states.get(Image.Embedding.FAILED, 0),
        "index": {"expected": indexable, "actual": in_index, "in_sync": in_index == indexable, "error": index_error},
        "duplicate_groups": len(duplicate_groups()),
        "trash_count": trash["count"],
        "trash_bytes": trash["bytes"] or 0,
    }
    if charts:
        stats["charts"] = _charts(totals)
    return stats


def _charts(totals: dict) -> dict:
    # The month as the first 7 characters of the stored UTC timestamp ("2024-05"): plain
    # SQL on both SQLite and Postgres, where TruncMonth runs a Python function per row
    # on SQLite (287 of 448 ms at 100k photos).
    months = (
        Metadata.objects.filter(image__trashed_at__isnull=True, taken_at__isnull=False)
        .annotate(month=Substr(Cast("taken_at", CharField()), 1, 7))
        .values_list("month").annotate(n=Count("pk")).order_by("month")
    )
    per_month = []
    for month, count in list(months)[-36:]:
        first = date(int(month[:4]), int(month[5:7]), 1)
        last = date(first.year + (first.month == 12), first.month % 12 + 1, 1) - timedelta(days=1)
        per_month.append((first.strftime("%Y-%m"), count,
                          _gallery(taken_from=first.isoformat(), taken_to=last.isoformat())))
    categories = (Metadata.objects.filter(image__trashed_at__isnull=True).exclude(category="")
                  .values_list("category").annotate(n=Count("pk")).order_by("-n", "category")[:10])
    cameras = (Metadata.objects.filter(image__trashed_at__isnull=True).exclude(camera_model="")
               .values_list("camera_model").annotate(n=Count("pk")).order_by("-n", "camera_model")[:10])
    tags = (Tag.objects.annotate(n=Count("photos", filter=Q(photos__image__trashed_at__isnull=True)))
            .filter(n__gt=0).order_by("-n", "name").values_list("name", "n")[:10])
    return {
        "per_month": per_month,
        "categories": [(name, n, _gallery(category=name)) for name, n in categories],
        "cameras": [(name, n, _gallery(camera=name)) for name, n in cameras],
        "tags": [(name, n, _gallery(tag=name)) for name, n in tags],
        "widths": [(f"{low}-{high - 1} px" if high else f"{low}+ px", totals[f"w{low}"],
                    _gallery(min_width=low) if low else _gallery())
                   for low, high in WIDTH_BUCKETS],
    }


def bar_chart(rows: list[tuple[str, int, str]], *, width: int = 400, bar: int = 22, label_width: int = 130) -> dict:
    """Lay out a horizontal bar chart for the SVG template: each bar with its geometry and link."""
    peak = max((count for _, count, _ in rows), default=0) or 1
    room = width - label_width - 60
    bars = [{"label": label, "count": count, "href": href, "y": i * (bar + 6),
             "width": max(1, round(room * count / peak)) if count else 0, "text_y": i * (bar + 6) + bar * 0.7}
            for i, (label, count, href) in enumerate(rows)]
    return {"bars": bars, "height": max(1, len(rows) * (bar + 6)), "width": width, "bar": bar,
            "label_width": label_width, "value_x": label_width + room + 8}
