"""One action on many photos at once, from the selection bar of the gallery, an album or search results."""

from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from gallery import services
from gallery.downloads import TooLarge, zip_response
from gallery.forms import BulkForm
from gallery.models import Image
from gallery.roles import can_edit
from gallery.views import posted_next

UNDO_SALT = "gallery.bulk.undo-trash"
UNDO_SECONDS = 24 * 3600


def _plural(count: int) -> str:
    return f"{count:,} photo{'s' if count != 1 else ''}"


def _unchanged(photos: list, count: int, why: str) -> str:
    """Why the action left some photos alone, as in "Tagged 1 photo (2 photos already had it)"; "" if none."""
    return f" ({_plural(len(photos) - count)} {why})" if count < len(photos) else ""


def _answer(request, message: str, *, status: int = 200, undo: str = "", changed: bool = False):
    """The bar's result in place (HTMX), or a message on the page the form came from."""
    if request.htmx:
        response = render(request, "gallery/_bulk_result.html", {"message": message, "undo": undo}, status=status)
        if changed:  # the grid shows photos that moved: it reloads itself
            response["HX-Trigger"] = "library-changed"
        return response
    (messages.success if status < 400 else messages.error)(request, message)
    return redirect(posted_next(request, reverse("gallery:index")))


def _apply(form: BulkForm, photos: list[Image], user) -> tuple[str, str, bool]:
    """Do the action; return (what happened, undo token, whether photos left the grid)."""
    data, action = form.cleaned_data, form.cleaned_data["action"]
    if action in ("tags_add", "tags_remove"):
        tags, them = ", ".join(data["tags"]), "it" if len(data["tags"]) == 1 else "them"
        if action == "tags_add":
            count = services.tags_add(images=photos, names=data["tags"])
            return f"Tagged {_plural(count)} with {tags}{_unchanged(photos, count, f'already had {them}')}.", "", False
        count = services.tags_remove(images=photos, names=data["tags"])
        return f"Took {tags} off {_plural(count)}{_unchanged(photos, count, f'without {them}')}.", "", False
    if action == "category":
        count = services.category_set(images=photos, category=data["category"])
        what = f"category “{data['category']}”" if data["category"] else "no category"
        return f"Set {what} on {_plural(count)}{_unchanged(photos, count, 'already had it')}.", "", False
    if action in ("album_add", "album_remove"):
        album = form.album(user=user)
        if action == "album_add":
            count = services.album_add(album=album, images=photos)
            return f"Added {_plural(count)} to “{album.name}”{_unchanged(photos, count, 'already in it')}.", "", False
        count = services.album_remove(album=album, images=photos)
        return f"Took {_plural(count)} out of “{album.name}”{_unchanged(photos, count, 'not in it')}.", "", True
    if action in ("favourite", "unfavourite"):
        on = action == "favourite"
        count = services.favourite_set(user=user, images=photos, on=on)
        left = _unchanged(photos, count, "already starred" if on else "not starred")
        return f"{'Starred' if on else 'Unstarred'} {_plural(count)}{left}.", "", False
    moved = [photo.pk for photo in photos]
    count = services.image_trash(images=photos)
    undo = signing.dumps(moved, salt=UNDO_SALT, compress=True)
    return f"Moved {_plural(count)} to the trash.", undo, True


@require_POST
def bulk(request):
    form = BulkForm(request.POST)
    if not form.is_valid():
        return _answer(request, " ".join(e for errors in form.errors.values() for e in errors), status=400)
    action = form.cleaned_data["action"]
    if action not in BulkForm.FOR_EVERYONE and not can_edit(request.user):
        return _answer(request, f"Only editors can {BulkForm.ACTIONS[action]}.", status=403)
    if action == "restore":
        return _restore(request, form.cleaned_data["undo"])
    try:
        photos = form.photos(user=request.user)
        if action == "download":
            return zip_response(photos)
    except (ValidationError, TooLarge) as problem:
        return _answer(request, " ".join(getattr(problem, "messages", [str(problem)])), status=400)
    message, undo, changed = _apply(form, photos, request.user)
    return _answer(request, message, undo=undo, changed=changed)


def _restore(request, token: str):
    try:
        ids = signing.loads(token, salt=UNDO_SALT, max_age=UNDO_SECONDS)
    except signing.BadSignature:
        return _answer(request, "This undo link is not valid (or older than a day): use the trash.", status=400)
    count = services.image_restore(images=list(Image.objects.trashed().filter(pk__in=ids)))
    return _answer(request, f"Restored {_plural(count)} from the trash.", changed=True)
