"""The gallery grid and the photo page."""

from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET

from gallery.filters import FilterForm
from gallery.hooks import not_searchable, result_ids, search_unavailable
from gallery.models import Album, Image
from gallery.roles import can_edit
from gallery.selectors import COUNT_AT_ONCE, filter_choices, image_page, neighbours, neighbours_in, starred_ids
from gallery.versions import library_version

# Rendered grids are cached per library version and URL: the same for every user, and
# 80% of a gallery request's time (10 ms for 60 cards). The version moves with every
# committed change; the timeout bounds staleness if a process dies before bumping it.
GRID_CACHE_SECONDS = 60
# The part of the page an HTMX request asks for (by its target): more photos, or the filtered results.
PARTIALS = {
    "grid-more": "gallery/index.html#grid_page",
    "gallery-results": "gallery/index.html#results",
    "grid-count": "gallery/index.html#grid_count",
}


@require_GET
def index(request):
    return gallery_page(request, FilterForm(request.GET, user=request.user))


def gallery_page(request, form: FilterForm, **extra):
    """The grid with its filters, for the gallery and for an album (which fixes the album filter)."""
    form.is_valid()  # the template reads the active filters even when the grid comes from the cache
    query = request.GET.copy()
    for key in ("page", "upto", "after"):
        query.pop(key, None)
    if extra.get("album"):  # photo pages opened from an album walk the album
        query["album"] = extra["album"].name
    after, after_error = _page_start(request.GET.get("after"))
    chips = form.chips(request.GET) if form.is_bound and not form.errors else []
    filter_error = form.error_words() if form.is_bound and form.errors else ""
    context = {
        "form": form,
        "filter_error": filter_error,
        "page_error": after_error,
        "query": query.urlencode(),
        "library_empty": not Image.objects.live().exists(),
        "chips": [chip for chip in chips if not (extra.get("album") and chip["name"] == "album")],
        # Lazy: on a cache hit the template never asks, and the queries never run.
        "page": SimpleLazyObject(
            lambda: image_page(form=form, page=request.GET.get("page", 1), upto=request.GET.get("upto"), after=after)
        ),
        "choices": SimpleLazyObject(filter_choices),
        "album_choices": SimpleLazyObject(lambda: list(Album.objects.all())),
        "not_searchable": not_searchable(up_to=COUNT_AT_ONCE),
        "counted_up_to": COUNT_AT_ONCE,
        "search_unavailable": search_unavailable(),
        "counting": request.htmx.target == "grid-count",  # the count a large grid asks for after its photos
        "cache_seconds": GRID_CACHE_SECONDS,
        # "Only my favourites" differs per person: so does its cache.
        "cache_key": f"{library_version()}:{request.get_full_path()}"
        + (f":{request.user.pk}" if form.is_valid() and form.cleaned_data.get("favourites") else ""),
        **extra,
    }
    template = PARTIALS.get(request.htmx.target, "gallery/index.html") if request.htmx else "gallery/index.html"
    return render(request, template, context, status=400 if filter_error or after_error else 200)


def _page_start(after: str | None) -> tuple[Image | None, str]:
    """The photo a page of the infinite scroll continues from (?after=ID), or why there is none."""
    if after is None:
        return None, ""
    if not (after.isdigit() and len(after) < 19):  # SQLite's integers have 63 bits
        return None, f"“{after[:40]}” is not a photo's number, so the gallery starts from its first photos."
    photo = Image.objects.select_related("metadata").filter(pk=after).first()
    if photo is None:
        return None, "This page continued from a photo that is no longer in the library: here are the first photos."
    return photo, ""


@require_GET
def detail(request, pk: int):
    image = get_object_or_404(Image.objects.select_related("metadata", "added_by"), pk=pk, trashed_at__isnull=True)
    previous_id, next_id, back_url, back_label = _walk(request, image)
    return render(
        request,
        "gallery/detail.html",
        {
            "image": image,
            "meta": image.metadata,
            "previous_id": previous_id,
            "next_id": next_id,
            "query": request.GET.urlencode(),
            "back_url": back_url,
            "back_label": back_label,
            "tags": image.metadata.tags.all(),
            "albums": image.albums.all(),
            "starred": image.pk in starred_ids(request),  # the page lists them all (base.html): no query of its own
            "album_choices": Album.objects.exclude(photos=image) if can_edit(request.user) else [],
        },
    )


def _walk(request, image: Image) -> tuple[int | None, int | None, str, str]:
    """Prev/next and the way back for a photo opened from a list: search results, an album, or the gallery."""
    params = request.GET.copy()
    came_from = params.pop("in", [""])[0]
    if came_from == "search":
        previous_id, next_id = neighbours_in(result_ids(params, request.user), image)
        return previous_id, next_id, f"{reverse('search:page')}?{params.urlencode()}", "Results"
    form = FilterForm(params, user=request.user)
    previous_id, next_id = neighbours(image=image, form=form) if form.is_valid() else (None, None)
    album = Album.objects.filter(name__iexact=params.get("album", "")).first() if params.get("album") else None
    if album is not None:
        params.pop("album")
        return previous_id, next_id, f"{reverse('gallery:album', args=[album.pk])}?{params.urlencode()}", album.name
    return previous_id, next_id, f"{reverse('gallery:index')}?{params.urlencode()}", "Gallery"
