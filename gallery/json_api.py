"""The gallery's JSON endpoints: a photo (read, edit, trash), uploads, statistics."""

from datetime import datetime
from typing import Annotated

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gallery.forms import MetadataForm
from gallery.models import Image
from gallery.serializers import image_dict
from gallery.services import image_trash, metadata_update
from gallery.stats import get_stats
from gallery.uploads import receive_uploads
from imgsim_site.api import api_view, error, for_client, json_body, parse, require_editor, valid


def _text(limit: int):
    return Annotated[str, StringConstraints(max_length=limit, strict=True)]


class MetadataChange(BaseModel):
    """What PATCH /api/images/ID may change: the JSON types here, the values by MetadataForm (as on the page)."""

    model_config = ConfigDict(extra="forbid")

    title: _text(200) | None = None
    description: _text(10000) | None = None
    category: _text(64) | None = None
    location: _text(200) | None = None
    tags: (
        list[Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, strict=True)]] | None
    ) = None
    taken_at: datetime | None = None
    latitude: Annotated[float, Field(allow_inf_nan=False)] | None = None
    longitude: Annotated[float, Field(allow_inf_nan=False)] | None = None


@api_view({"POST"}, editor=True)
def upload(request):
    result = receive_uploads(request.FILES.getlist("files"), user=request.user)
    if result.error:
        return error(result.status, result.error)
    return JsonResponse({"results": result.outcomes}, status=result.status)


@api_view({"GET", "PATCH", "DELETE"})
def image(request, pk: int):
    photo = get_object_or_404(Image.objects.live().select_related("metadata"), pk=pk)
    if request.method == "DELETE":
        require_editor(request, "Moving photos to the trash")
        image_trash(images=[photo])
        return JsonResponse(
            {"id": photo.pk, "trashed": True, "detail": "Moved to the trash; an editor can restore it on /trash/."}
        )
    if request.method == "PATCH":
        require_editor(request, "Editing metadata")
        change = parse(MetadataChange, json_body(request)).model_dump(exclude_unset=True)
        fields, tags = valid(MetadataForm.for_change(photo.metadata, change)).changes()
        metadata_update(image=photo, fields=fields, tags=tags)
        photo = Image.objects.select_related("metadata").get(pk=pk)
    return JsonResponse(for_client(request, image_dict(photo)))


@api_view({"GET"})
def stats(request):
    return JsonResponse(get_stats(charts=False))
