"""The upload page: many files, one request each from the page's script, or all at once without it."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from gallery.roles import editor_required
from gallery.uploads import receive_uploads


@require_http_methods(["GET", "POST"])
@editor_required(to="upload photos")
def upload(request):
    if request.method == "GET":
        return render(request, "gallery/upload.html", _upload_limits())
    result = receive_uploads(request.FILES.getlist("files"), user=request.user)
    context = {
        "outcomes": result.outcomes,
        "error": result.error,
        "worker": settings.IMGSIM_WORKER,
        "not_searchable": result.not_searchable,
        **_upload_limits(),
    }
    template = "gallery/upload.html#results" if request.htmx else "gallery/upload.html"
    return render(request, template, context, status=result.status)


def _upload_limits() -> dict:
    return {"max_mb": settings.IMGSIM_UPLOAD_MAX_BYTES // 2**20, "max_files": settings.IMGSIM_UPLOAD_MAX_FILES}
