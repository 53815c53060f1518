"""The statistics page, and the whole collection as a download for staff."""

from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from gallery.charts import bar_chart
from gallery.collection.export import gzipped_document
from gallery.stats import get_stats, last_failure


@require_GET
def stats_page(request):
    stats = get_stats(allow_stale=True)
    if stats is None:  # a large library's first numbers: the page asks again until they are counted
        return render(request, "gallery/stats.html", {"stats": None, "failure": last_failure()})
    charts = {name: bar_chart(rows) for name, rows in stats["charts"].items()}
    return render(request, "gallery/stats.html", {"stats": stats, "charts": charts})


@require_GET
def export_download(request):
    """Stream the whole collection as gzip-compressed JSON: the export_collection document."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can download the whole collection.")
    response = StreamingHttpResponse(gzipped_document(), content_type="application/gzip")
    response["Content-Disposition"] = f'attachment; filename="imgsim-collection-{timezone.now():%Y%m%d-%H%M}.json.gz"'
    return response
