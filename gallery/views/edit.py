"""Editing a photo's details in place (editors): the form swaps in for the facts on the photo page."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from gallery.forms import MetadataForm
from gallery.models import Image
from gallery.roles import editor_required
from gallery.selectors import tag_names
from gallery.services import metadata_update


def _photo(pk: int) -> Image:
    return get_object_or_404(Image.objects.live().select_related("metadata", "added_by"), pk=pk)


def _facts(request, image: Image, **extra):
    context = {"image": image, "meta": image.metadata, "tags": image.metadata.tags.all(), **extra}
    return render(request, "gallery/detail.html#facts", context)


@require_GET
def facts(request, pk: int):
    return _facts(request, _photo(pk))


@editor_required
@require_http_methods(["GET", "POST"])
def edit(request, pk: int):
    image = _photo(pk)
    form = MetadataForm(request.POST if request.method == "POST" else None, instance=image.metadata)
    if form.is_valid():
        fields, tags = form.changes()
        metadata_update(image=image, fields=fields, tags=tags)
        if request.htmx:
            return _facts(request, _photo(pk), saved=True)
        messages.success(request, "Saved.")
        return redirect("gallery:detail", pk)
    template = "gallery/_metadata_form.html" if request.htmx else "gallery/edit.html"
    context = {"image": image, "form": form, "tag_names": tag_names()}
    return render(request, template, context, status=422 if form.errors else 200)
