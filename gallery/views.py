from django.contrib.auth.decorators import permission_required
from django.conf import settings
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_http_methods

from gallery import storage
from gallery.filters import FilterForm
from gallery.hooks import library_version
from gallery.uploads import receive_uploads
from gallery.models import Image
from gallery.roles import EDIT_PERMISSION
from gallery.selectors import filter_choices, image_page, neighbours


# Rendered grids are cached per library version and URL: the same for every user, and
# 80% of a gallery request's time (10 ms for 60 cards). The version moves with every
# change; the timeout only bounds staleness if an index write (which bumps it) fails.
GRID_CACHE_SECONDS = 60


@require_GET
def index(request):
    form = FilterForm(request.GET)
    form.is_valid()  # the template reads the active filters even when the grid comes from the cache
    query = request.GET.copy()
    query.pop("page", None)
    version = library_version()
    context = {
        "form": form, "query": query.urlencode(), "library_empty": not Image.objects.live().exists(),
        # Lazy: on a cache hit the template never asks, and the queries never run.
        "page": SimpleLazyObject(lambda: image_page(form=form, page=request.GET.get("page", 1))),
        "choices": SimpleLazyObject(filter_choices),
        "cache_seconds": GRID_CACHE_SECONDS if version is not None else 0,
        "cache_key": f"{version}:{request.get_full_path()}",
    }
    if request.htmx and request.htmx.target == "grid-more":
        return render(request, "gallery/index.html#grid_page", context)
    if request.htmx and request.htmx.target == "gallery-results":
        return render(request, "gallery/index.html#results", context)
    return render(request, "gallery/index.html", context)


@require_GET
def detail(request, pk: int):
    image = get_object_or_404(Image.objects.select_related("metadata", "added_by"), pk=pk, trashed_at__isnull=True)
    form = FilterForm(request.GET)
    previous_id, next_id = neighbours(image=image, form=form) if form.is_valid() else (None, None)
    query = request.GET.urlencode()
    return render(request, "gallery/detail.html", {
        "image": image, "meta": getattr(image, "metadata", None), "previous_id": previous_id, "next_id": next_id,
        "query": query, "tags": image.metadata.tags.all() if hasattr(image, "metadata") else [],
    })


def _media_response(path, content_type: str, *, filename: str | None = None) -> FileResponse:
    try:
        handle = open(path, "rb")
    except OSError:
        raise Http404("file missing") from None
    response = FileResponse(handle, content_type=content_type, as_attachment=False, filename=filename)
    # Photos are never documents: no sniffing into HTML, no scripts, no embedding elsewhere.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@require_GET
def original(request, pk: int):
    image = get_object_or_404(Image, pk=pk)
    return _media_response(storage.original_path(image), storage.CONTENT_TYPES[image.format],
                           filename=image.original_name)


@require_GET
def rendition(request, pk: int, kind: str):
    if kind not in storage.RENDITIONS:
        raise Http404("no such rendition")
    image = get_object_or_404(Image, pk=pk)
    content_type = storage.RENDITION_CONTENT_TYPES[storage.RENDITIONS[kind][1]]
    return _media_response(storage.rendition_path(image, kind), content_type)


@require_http_methods(["GET", "POST"])
@permission_required(EDIT_PERMISSION, raise_exception=True)
def upload(request):
    if request.method == "GET":
        return render(request, "gallery/upload.html", _upload_limits())
    result = receive_uploads(request.FILES.getlist("files"), user=request.user)
    context = {"outcomes": result.outcomes, "error": result.error, "worker": settings.IMGSIM_WORKER,
               **_upload_limits()}
    template = "gallery/upload.html#results" if request.htmx else "gallery/upload.html"
    return render(request, template, context, status=result.status)


def _upload_limits() -> dict:
    return {"max_mb": settings.IMGSIM_UPLOAD_MAX_BYTES // 2**20, "max_files": settings.IMGSIM_UPLOAD_MAX_FILES}
