"""A photo's own changes: its details edited in place (editors), and its star (everyone's own)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gallery.forms import MetadataForm
from gallery.models import Image
from gallery.roles import editor_required
from gallery.selectors import tag_names
from gallery.services import favourite_set, metadata_update
from gallery.views import posted_next


def _photo(pk: int) -> Image:
    return get_object_or_404(Image.objects.live().select_related("metadata", "added_by"), pk=pk)


def _facts(request, image: Image, **extra):
    context = {
        "image": image,
        "meta": image.metadata,
        "tags": image.metadata.tags.all(),
        "starred": image.favourites.filter(user=request.user).exists(),
        **extra,
    }
    return render(request, "gallery/detail.html#facts", context)


@require_GET
def facts(request, pk: int):
    return _facts(request, _photo(pk))


@editor_required(to="edit a photo's details")
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


@require_POST
def favourite(request, pk: int):
    """Star or unstar a photo for the person asking (viewers too: a star is their own)."""
    image = _photo(pk)
    favourite_set(user=request.user, images=[image], on=request.POST.get("on") == "1")
    if request.htmx:
        starred = image.favourites.filter(user=request.user).exists()
        return render(request, "gallery/_star.html", {"pk": pk, "starred": starred})
    return redirect(posted_next(request, reverse("gallery:detail", args=[pk])))
