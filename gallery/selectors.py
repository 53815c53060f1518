"""Reads for the gallery pages."""

from django.core.paginator import Paginator
from django.db.models import F, Q

from gallery.filters import FilterForm
from gallery.models import Album, Image, Tag

PAGE_SIZE = 60


def image_list(*, form: FilterForm):
    """Return live photos matching the form's filters, in the chosen order."""
    images = Image.objects.live().select_related("metadata")
    if form.is_bound and not form.is_valid():  # the page says what is wrong instead of showing everything
        return images.none()
    if form.is_valid():
        images = images.filter(form.to_q())
        if form.tags():
            images = images.distinct()
        if form.cleaned_data.get("sort") == "taken":
            return images.order_by(F("metadata__taken_at").desc(nulls_last=True), "-id")
    return images.order_by("-added_at", "-id")


def image_page(*, form: FilterForm, page: int, upto=None):
    """One page of the grid; with upto, pages 1 to upto together (a return to a place deep in the scroll)."""
    paginator = Paginator(image_list(form=form), PAGE_SIZE)
    return PagesUpTo(paginator, upto) if upto else paginator.get_page(page)


class PagesUpTo:
    """Pages 1..n of a paginator as one page: what the infinite scroll had shown when the user left.

    The grid replaces its URL with ?upto=n as it loads page n, so Back to it renders
    the same photos and the browser can put the scroll where it was.
    """

    def __init__(self, paginator: Paginator, upto):
        self.paginator = paginator
        self.last = paginator.get_page(upto)
        self.number = self.last.number
        self.object_list = paginator.object_list[: self.last.number * paginator.per_page]

    def has_next(self) -> bool:
        return self.last.has_next()

    def next_page_number(self) -> int:
        return self.last.next_page_number()


def neighbours(*, image: Image, form: FilterForm) -> tuple[int | None, int | None]:
    """Return the ids before and after an image within the current filter and order.

    Two keyset lookups on the grid's own order (its sort key, then id), each one
    indexed step from the photo: as quick for the millionth photo as for the first.
    """
    images = image_list(form=form)
    if form.is_valid() and form.cleaned_data.get("sort") == "taken":
        key, value = "metadata__taken_at", image.metadata.taken_at
    else:
        key, value = "added_at", image.added_at
    ids = images.values_list("pk", flat=True)
    unknown = ids.filter(**{f"{key}__isnull": True}).order_by("-pk")  # their order: by id alone
    if value is None:  # unknown dates come last, by id: before them every dated photo
        previous = unknown.filter(pk__gt=image.pk).reverse().first()
        if previous is None:
            previous = ids.filter(**{f"{key}__isnull": False}).reverse().first()
        return previous, unknown.filter(pk__lt=image.pk).first()
    # A range on the key alone (then the tie on id) lets the database walk its index from the photo.
    previous = ids.filter(**{f"{key}__gte": value}).exclude(**{key: value, "pk__lte": image.pk}).reverse().first()
    following = ids.filter(**{f"{key}__lte": value}).exclude(**{key: value, "pk__gte": image.pk}).first()
    if following is None:
        following = unknown.first()
    return previous, following


def neighbours_in(ids: list[int], image: Image) -> tuple[int | None, int | None]:
    """Return the ids before and after an image in a list of ids (None at the ends, or if it is not there)."""
    try:
        position = ids.index(image.pk)
    except ValueError:
        return None, None
    previous = ids[position - 1] if position > 0 else None
    following = ids[position + 1] if position + 1 < len(ids) else None
    return previous, following


# The sidebar's suggestions of categories and cameras read every photo's metadata (15 ms at 100k
# photos): computed at most once a minute, so a new category is suggested within a minute.
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
        values = Metadata.objects.exclude(**{field: ""}).values_list(field, flat=True)
        return list(values.distinct().order_by(field)[:100])

    return {"categories": distinct("category"), "cameras": distinct("camera_model")}


def tag_names(limit: int = 500) -> list[str]:
    """The most used tags, for the editor's suggestions."""
    from django.db.models import Count

    return list(
        Tag.objects.annotate(uses=Count("photos")).order_by("-uses", "name").values_list("name", flat=True)[:limit]
    )


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
