"""Reads for the gallery pages."""

from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.utils.functional import cached_property

from gallery.filters import FilterForm
from gallery.models import Album, Favourite, Image, Metadata, Tag

PAGE_SIZE = 60
# What a grid's card shows (templates/gallery/index.html): a page reads these alone (the rest of a
# photo's columns, JSON among them, took 40% of reading a page's rows).
CARD_FIELDS = ("original_name", "byte_size", "metadata__title")
# A grid counts its photos at once in a library of up to this many; beyond, the count comes by a
# second request (gallery.views.browse): counting a million live photos walks an index for ~60 ms,
# a filtered million for hundreds, and the photos need not wait for it.
COUNT_AT_ONCE = 10_000
# A library found beyond COUNT_AT_ONCE is taken to stay beyond it this long (per process), instead
# of counting that many photos for every page. Wrong only after a library shrinks, and then only in
# that the count comes by the second request.
BEYOND_REMEMBERED_SECONDS = 60


def image_list(*, form: FilterForm, page: bool = False):
    """Return live photos matching the form's filters, in the chosen order.

    page: for the first photos of it (a page, a neighbour), not all of them (a count, select all).
    """
    images = Image.objects.live().select_related("metadata")
    if form.is_bound and not form.is_valid():  # the page says what is wrong instead of showing everything
        return images.none()
    if form.is_valid():
        images = images.filter(form.to_q(page=page))  # tags, albums and stars are subqueries: no repeated rows
        if form.cleaned_data.get("sort") == "taken":
            # An inner join (every photo has its metadata row) and the tie on metadata's side let the
            # database walk one index (date, id) in order; from the photo's side it sorted the library.
            images = images.filter(metadata__isnull=False)
            return images.order_by(F("metadata__taken_at").desc(nulls_last=True), "-metadata__image_id")
    return images.order_by("-added_at", "-id")


def image_page(*, form: FilterForm, page, upto=None, after: Image | None = None):
    """One page of the grid.

    after: the page that follows this photo, found from it in the grid's index (keyset):
    as quick at the 10,000th page as at the second, where an offset walks every photo
    before it. upto: pages 1 to upto together (a return to a place deep in the scroll).
    page alone (a link from before keysets, or typed): the numbered page.
    """
    ids = image_list(form=form, page=True).values_list("pk", flat=True)
    # Built when a count or a numbered page asks for it: a filter's tag is then not looked up twice for every page.
    paginator = Paginator(_BuiltOnUse(lambda: image_list(form=form)), PAGE_SIZE)
    if after is not None:
        rows = _photos(_following(ids, form, after, PAGE_SIZE + 1))
        return GridPage(paginator, rows[:PAGE_SIZE], _page_number(page, default=2), more=len(rows) > PAGE_SIZE)
    if upto or _page_number(page, default=1) == 1:  # no count needed, as a numbered page needs one
        number = _page_number(upto, default=1)
        rows = _photos(ids[: number * PAGE_SIZE + 1])
        return GridPage(paginator, rows[: number * PAGE_SIZE], number, more=len(rows) > number * PAGE_SIZE)
    numbered = paginator.get_page(page)
    return GridPage(paginator, list(numbered.object_list), numbered.number, more=numbered.has_next())


def _photos(ids) -> list[Image]:
    """The photos of these ids, in their order (one deleted in between is left out). A page is found
    by ids and then read: a sort that carries whole rows with their metadata, for every photo of a
    filter, took 2.5x as long."""
    ids = list(ids)
    found = Image.objects.select_related("metadata").only(*CARD_FIELDS).in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]


class _BuiltOnUse:
    """A queryset made by build() the first time it is counted or sliced (what a Paginator asks of it)."""

    def __init__(self, build):
        self._build = build

    @cached_property
    def _queryset(self):
        return self._build()

    def count(self) -> int:
        return self._queryset.count()

    def __getitem__(self, key):
        return self._queryset[key]


class GridPage:
    """Photos of the infinite scroll: one page, or every page up to one; links on by the last photo."""

    def __init__(self, paginator: Paginator, photos: list, number: int, *, more: bool):
        self.paginator = paginator
        self.number = number
        self.object_list = photos
        self._more = more

    @cached_property
    def count_at_once(self) -> int | None:
        """How many photos the grid has, when the library has at most COUNT_AT_ONCE (else None: count later)."""
        if not self._more and self.number == 1:
            return len(self.object_list)
        # Whether the library is that small is cheap to know; a filter's count up to a limit is not
        # (3% of a million photos: walking 300,000 of them to find 10,000).
        if _library_beyond(COUNT_AT_ONCE):
            return None
        return self.paginator.count

    def has_next(self) -> bool:
        return self._more

    def next_page_number(self) -> int:
        return self.number + 1

    def last_id(self) -> int | None:
        return self.object_list[-1].pk if self.object_list else None


def _library_beyond(limit: int) -> bool:
    """Whether the library has more than limit live photos (a yes is remembered for a while)."""
    key = f"gallery:library-beyond:{limit}"
    if cache.get(key):
        return True
    beyond = Image.objects.live().order_by()[: limit + 1].count() > limit
    if beyond:
        cache.set(key, True, BEYOND_REMEMBERED_SECONDS)
    return beyond


def _page_number(value, *, default: int) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


def _grid_key(form: FilterForm, image: Image) -> tuple[str, object, str]:
    """The field the grid is sorted by (then by the photo's id, descending), this photo's value of
    it, and the id's name on the side of that field (so that one index holds the whole order)."""
    if form.is_valid() and form.cleaned_data.get("sort") == "taken":
        return "metadata__taken_at", image.metadata.taken_at, "metadata__image_id"
    return "added_at", image.added_at, "pk"


def _following(photos, form: FilterForm, image: Image, count: int) -> list:
    """Up to count of the photos (a queryset in the grid's order) that come after this one.

    A range on the sort key alone, then the tie on id, lets the database walk its
    index from the photo; photos without a date come last, by id.
    """
    key, value, tie = _grid_key(form, image)
    unknown = photos.filter(**{f"{key}__isnull": True}).order_by(f"-{tie}")
    if value is None:
        return list(unknown.filter(**{f"{tie}__lt": image.pk})[:count])
    found = list(photos.filter(**{f"{key}__lte": value}).exclude(**{key: value, f"{tie}__gte": image.pk})[:count])
    if len(found) < count:
        found += list(unknown[: count - len(found)])
    return found


def _preceding(ids, form: FilterForm, image: Image):
    """The id of the photo just before this one in the grid (ids: a queryset in the grid's order)."""
    key, value, tie = _grid_key(form, image)
    if value is None:  # unknown dates with a higher id, then the last dated photo
        later = ids.filter(**{f"{key}__isnull": True, f"{tie}__gt": image.pk}).order_by(f"-{tie}").reverse().first()
        return later if later is not None else ids.filter(**{f"{key}__isnull": False}).reverse().first()
    return ids.filter(**{f"{key}__gte": value}).exclude(**{key: value, f"{tie}__lte": image.pk}).reverse().first()


def neighbours(*, image: Image, form: FilterForm) -> tuple[int | None, int | None]:
    """Return the ids before and after an image within the current filter and order (keyset lookups)."""
    ids = image_list(form=form, page=True).values_list("pk", flat=True)
    return _preceding(ids, form, image), next(iter(_following(ids, form, image, 1)), None)


def neighbours_in(ids: list[int], image: Image) -> tuple[int | None, int | None]:
    """Return the ids before and after an image in a list of ids (None at the ends, or if it is not there)."""
    try:
        position = ids.index(image.pk)
    except ValueError:
        return None, None
    previous = ids[position - 1] if position > 0 else None
    following = ids[position + 1] if position + 1 < len(ids) else None
    return previous, following


# The sidebar's suggestions of categories and cameras: computed at most once a minute, so a new
# category is suggested within a minute.
SUGGESTIONS_SECONDS = 60


def filter_choices() -> dict:
    """Values that exist in the library, for the sidebar's suggestions."""
    from django.core.cache import cache

    return {
        "albums": list(Album.objects.values_list("name", flat=True)[:200]),
        "tags": list(Tag.objects.values_list("name", flat=True)[:200]),
        **cache.get_or_set("gallery:metadata-suggestions", _metadata_suggestions, SUGGESTIONS_SECONDS),
    }


def _metadata_suggestions() -> dict:
    from gallery.models import Metadata

    def distinct(field: str) -> list[str]:
        """Up to 100 values in order, one indexed lookup each: DISTINCT read all of a million photos (150 ms)."""
        rows = Metadata.objects.exclude(**{field: ""}).order_by(field).values_list(field, flat=True)
        values = []
        while len(values) < 100:
            value = (rows.filter(**{f"{field}__gt": values[-1]}) if values else rows).first()
            if value is None:
                return values
            values.append(value)
        return values

    return {"categories": distinct("category"), "cameras": distinct("camera_model")}


def tag_names(limit: int = 500) -> list[str]:
    """The most used tags, for the editor's suggestions."""
    from django.db.models import Count

    return list(
        Tag.objects.annotate(uses=Count("photos")).order_by("-uses", "name").values_list("name", flat=True)[:limit]
    )


def starred_ids(request) -> frozenset[int]:
    """The photos the person asking starred, read once per request: every full page lists them
    (for the stars on cards shared by everyone), and the photo page's own star is one of them."""
    if not hasattr(request, "_starred_ids"):
        user = getattr(request, "user", None)
        mine = Favourite.objects.filter(user=user) if user and user.is_authenticated else Favourite.objects.none()
        request._starred_ids = frozenset(mine.values_list("image_id", flat=True))
    return request._starred_ids


def tags_by_photo(ids) -> dict[int, list[str]]:
    """Each of these photos' tag names, sorted, in one query (a prefetch builds a manager for every photo)."""
    tags: dict[int, list[str]] = {}
    rows = Metadata.tags.through.objects.filter(metadata_id__in=ids).values_list("metadata_id", "tag__name")
    for image_id, name in sorted(rows, key=lambda row: row[1]):
        tags.setdefault(image_id, []).append(name)
    return tags


def album_list():
    """Every album with its cover and how many live photos it holds."""
    from django.db.models import Count

    return Album.objects.select_related("cover").annotate(
        size=Count("photos", filter=Q(photos__trashed_at__isnull=True))
    )


TRASH_PAGE_SIZE = 60


def trash_page(*, page):
    """Return a page of the trash, most recently trashed first."""
    photos = Image.objects.trashed().select_related("metadata").order_by("-trashed_at", "-id")
    return Paginator(photos, TRASH_PAGE_SIZE).get_page(page)


def trash_summary() -> dict:
    """How many photos are in the trash and how many bytes they hold."""
    from django.db.models import Count, Sum

    return Image.objects.trashed().aggregate(count=Count("pk"), bytes=Sum("byte_size"))
