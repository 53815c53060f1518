"""Originals and renditions, served only to logged-in users (or API tokens), never as public static files."""

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_GET

from gallery import storage
from gallery.models import Image
from gallery.roles import can_edit
from imgsim_site.api import bearer_or_login

# Short on purpose: a browser may show a photo from its cache this long after the photo
# was trashed. Revalidation is a cheap 304 (the ETag names the file and its state).
MEDIA_MAX_AGE = 600


def _visible_image(request, pk: int) -> Image:
    """Return the photo if this user may see its files: trashed photos only for editors (the trash page)."""
    image = get_object_or_404(Image, pk=pk)
    if image.is_trashed and not can_edit(request.user):
        raise Http404("no such photo")
    return image


def _media_response(
    request, image: Image, path, content_type: str, *, kind: str, filename: str | None = None, download: bool = False
):
    etag = f'"{image.sha256[:20]}-{kind}-{"trashed" if image.is_trashed else "live"}"'
    not_modified = get_conditional_response(request, etag=etag)
    if not_modified is not None:
        return not_modified
    try:
        handle = open(path, "rb")
    except OSError:
        raise Http404("file missing") from None
    response = FileResponse(handle, content_type=content_type, as_attachment=download, filename=filename)
    # Photos are never documents: no sniffing into HTML, no scripts, no embedding elsewhere.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = f"private, max-age={MEDIA_MAX_AGE}"
    response["ETag"] = etag
    return response


@require_GET
@bearer_or_login
def original(request, pk: int):
    image = _visible_image(request, pk)
    return _media_response(
        request,
        image,
        storage.original_path(image),
        storage.CONTENT_TYPES[image.format],
        kind="original",
        filename=image.original_name,
        download=bool(request.GET.get("download")),
    )


@require_GET
@bearer_or_login
def rendition(request, pk: int, kind: str):
    if kind not in storage.RENDITIONS:
        raise Http404("no such rendition")
    image = _visible_image(request, pk)
    content_type = storage.RENDITION_CONTENT_TYPES[storage.RENDITIONS[kind][1]]
    return _media_response(request, image, storage.rendition_path(image, kind), content_type, kind=kind)
