"""Albums: the list, an album's page (the gallery grid, fixed to the album), and editors' changes."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from gallery.filters import FilterForm
from gallery.forms import AlbumForm, AlbumPhotosForm
from gallery.models import Album, Image
from gallery.roles import editor_required
from gallery.selectors import album_list
from gallery.services import album_add, album_create, album_delete, album_remove, album_update
from gallery.views import posted_next
from gallery.views.browse import gallery_page


@require_GET
def albums(request):
    return render(request, "gallery/albums.html", {"albums": album_list(), "form": AlbumForm()})


@require_GET
def album(request, pk: int):
    chosen = get_object_or_404(Album.objects.select_related("cover"), pk=pk)
    params = request.GET.copy()
    params["album"] = chosen.name
    return gallery_page(
        request, FilterForm(params, user=request.user), album=chosen, album_form=AlbumForm(instance=chosen)
    )


@require_POST
@editor_required(to="create albums")
def album_new(request):
    form = AlbumForm(request.POST)
    if not form.is_valid():
        return render(request, "gallery/albums.html", {"albums": album_list(), "form": form}, status=400)
    created = album_create(**form.cleaned_data, user=request.user)
    messages.success(request, f"Album “{created.name}” created. Add photos from a photo's page or from a selection.")
    return redirect("gallery:album", created.pk)


@require_POST
@editor_required(to="change albums")
def album_change(request, pk: int):
    chosen = get_object_or_404(Album, pk=pk)
    form = AlbumForm(request.POST, instance=Album.objects.get(pk=pk))  # a copy: a refused name must not stick
    if not form.is_valid():
        messages.error(request, " ".join(message for errors in form.errors.values() for message in errors))
        return redirect("gallery:album", pk)
    album_update(album=chosen, **form.cleaned_data)
    messages.success(request, "Album saved.")
    return redirect("gallery:album", pk)


@require_POST
@editor_required(to="delete albums")
def album_remove_all(request, pk: int):
    chosen = get_object_or_404(Album, pk=pk)
    held = album_delete(album=chosen)
    photos = f"{held} photo{'s' if held != 1 else ''}"
    messages.success(request, f"Album “{chosen.name}” deleted; its {photos} stay in the library.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("gallery:albums"))
    return redirect("gallery:albums")


@require_POST
@editor_required(to="add photos to albums or take them out")
def album_photos(request):
    """Add photos to an album (an existing one, or a new one named in the form) or take them out."""
    form = AlbumPhotosForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(message for errors in form.errors.values() for message in errors))
        return redirect(posted_next(request, reverse("gallery:albums")))
    chosen = form.album(user=request.user)
    photos = form.photos(Image.objects.live())
    if form.cleaned_data["action"] == "remove":
        count = album_remove(album=chosen, images=photos)
        messages.success(request, f"Took {count} photo{'s' if count != 1 else ''} out of “{chosen.name}”.")
    else:
        count = album_add(album=chosen, images=photos)
        messages.success(request, f"Added {count} photo{'s' if count != 1 else ''} to “{chosen.name}”.")
    return redirect(posted_next(request, reverse("gallery:albums")))


@require_POST
@editor_required(to="choose album covers")
def album_cover(request, pk: int):
    """Make one of an album's photos its cover."""
    chosen = get_object_or_404(Album, pk=pk)
    photo = chosen.photos.filter(pk=request.POST.get("photo") or 0, trashed_at__isnull=True).first()
    if photo is None:
        messages.error(request, f"That photo is not in “{chosen.name}”.")
    else:
        album_update(album=chosen, name=chosen.name, description=chosen.description, cover=photo)
        messages.success(request, f"{photo.original_name} is now the cover of “{chosen.name}”.")
    return redirect(posted_next(request, reverse("gallery:album", args=[pk])))
