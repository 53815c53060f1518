"""The one filter language: which photos a filter selects, for every page, the API and Python.

A filter is a dict in Chroma's `where` syntax, {"category": "landscape"} or
{"$and": [{"year": 2023}, {"tags": {"$in": ["sea", "snow"]}}]}. It is defined here
once and translated from here: `to_q` for the database (the truth), `to_chroma`
for Chroma's own `where`, and `fold` for search's in-memory columns. The gallery
sidebar (`FilterForm`) only builds such a dict, so the gallery, the search page,
the JSON API and the Python API select the same photos.

Semantics, decided once: text fields match whole values, case-insensitively
("landscape" finds "Landscape"; on SQLite only ASCII letters fold case); numbers
compare; `tags` and `album` are lists a photo has (one photo, many albums; albums by
name), so `{"album": "Holidays"}` selects the photos in it and $in any of several;
`favourite_of` names the people who starred a photo (the sidebar's "Favourites"
box asks for the viewer's own); `camera` in the sidebar is the make or the model.
"""

import functools
import math
import operator
from datetime import UTC, datetime, time, timedelta

from django import forms
from django.db.models import Exists, F, OuterRef, Q

from gallery.planner import AnyOf, Unindexed, holds_for_many, listed

COMPARISON = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"}
SETS = {"$in", "$nin"}
ARRAY = {"$contains", "$not_contains"}
LOGICAL = {"$and", "$or"}

TEXT, NUMBER, BOOLEAN = "text", "number", "true/false"
# filter key -> (ORM path from Image, kind). year, has_gps and tags have rules of their own.
FIELDS = {
    "category": ("metadata__category", TEXT),
    "camera_make": ("metadata__camera_make", TEXT),
    "camera_model": ("metadata__camera_model", TEXT),
    "location": ("metadata__location", TEXT),
    "format": ("format", TEXT),
    "filename": ("original_name", TEXT),
    "width": ("width", NUMBER),
    "height": ("height", NUMBER),
    "taken_ts": ("metadata__taken_at", NUMBER),
    "year": ("metadata__taken_at", NUMBER),
    "has_gps": ("metadata__latitude", BOOLEAN),
    "tags": ("metadata__tags__name", TEXT),
    "album": ("albums__name", TEXT),
    "favourite_of": ("favourites__user__username", TEXT),
}
LIST_FIELDS = {"tags", "album", "favourite_of"}  # a photo has several: $eq means "has", $contains works too
MAX_DEPTH = 16  # nested $and / $or levels: deeper is a mistake or an attack on the stack
TEXT_FIELDS = {key for key, (_, kind) in FIELDS.items() if kind == TEXT}
_ORM_LOOKUP = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


class InvalidFilter(ValueError):
    """A filter that is not valid; the message names what is wrong."""

    status = 400


def fold_text(value: str) -> str:
    """The form every text value is compared in."""
    return value.lower()


# --- validation ---------------------------------------------------------------------


def _check_value(key: str, value, kind: str | None) -> None:
    if kind is None:  # free-form metadata: any scalar Chroma can store
        ok = isinstance(value, str | int | float | bool)
    elif kind == BOOLEAN:
        ok = isinstance(value, bool)
    elif kind == NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise InvalidFilter(f"filter on '{key}' needs a {kind or 'text, number or true/false'} value, not {value!r}")


def validate(where, *, free_form: bool = False, depth: int = 0) -> dict:
    """Check a filter; raise InvalidFilter naming what is wrong. Returns the filter.

    free_form accepts any metadata key (the standalone ChromaDBBackend); otherwise
    only the fields imgsim indexes.
    """
    if depth > MAX_DEPTH:
        raise InvalidFilter(f"a filter may nest $and / $or at most {MAX_DEPTH} levels deep")
    if not isinstance(where, dict) or not where:
        raise InvalidFilter('a filter is a non-empty object such as {"category": "landscape"}')
    if len(where) > 1:  # {"a": 1, "b": 2} means both, as in Chroma's shorthand
        for key, value in where.items():
            validate({key: value}, free_form=free_form, depth=depth)
        return where
    ((key, condition),) = where.items()
    if key in LOGICAL:
        if not isinstance(condition, list) or not condition:
            raise InvalidFilter(f"'{key}' needs a non-empty list of filters")
        for part in condition:
            validate(part, free_form=free_form, depth=depth + 1)
        return where
    if key.startswith("$"):
        raise InvalidFilter(f"unknown operator '{key}'; use one of {', '.join(sorted(LOGICAL))} at the top level")
    if key not in FIELDS and not free_form:
        raise InvalidFilter(f"unknown filter field '{key}'; filterable: {', '.join(sorted(FIELDS))}")
    kind = FIELDS[key][1] if key in FIELDS else None
    if not isinstance(condition, dict):
        condition = {"$eq": condition}
    if len(condition) != 1:
        raise InvalidFilter(f"filter on '{key}' needs exactly one operator")
    ((op, value),) = condition.items()
    allowed = COMPARISON | SETS | (ARRAY if key in LIST_FIELDS or kind is None else set())
    if op not in allowed:
        raise InvalidFilter(f"operator '{op}' cannot filter '{key}'; use one of {', '.join(sorted(allowed))}")
    if op in _ORM_LOOKUP and kind != NUMBER:
        if kind is not None or not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidFilter(f"'{op}' compares numbers; '{key}' is not a number")
    if op in SETS:
        if not isinstance(value, list) or not value:
            raise InvalidFilter(f"'{op}' on '{key}' needs a non-empty list")
        for item in value:
            _check_value(key, item, kind)
    else:
        _check_value(key, value, kind)
    return where


def fold(where: dict, *, leaf, both, either):
    """Evaluate a validated filter tree bottom-up.

    leaf(key, operator, value) answers one condition; both / either combine the
    answers of $and / $or parts (sibling keys are combined with both).
    """
    result = None
    for key, condition in where.items():
        if key in LOGICAL:
            answer = functools.reduce(
                both if key == "$and" else either,
                [fold(part, leaf=leaf, both=both, either=either) for part in condition],
            )
        else:
            if not isinstance(condition, dict):
                condition = {"$eq": condition}
            ((op, value),) = condition.items()
            answer = leaf(key, op, value)
        result = answer if result is None else both(result, answer)
    return result


def year_bounds(year) -> tuple[datetime, datetime]:
    """The first instant of the year and of the next one, in UTC."""
    year = int(year)
    if not 1 <= year < 9999:
        raise InvalidFilter(f"year {year} is out of range")
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


# --- to the database ----------------------------------------------------------------


def _field_q(key: str, op: str, value, *, few: bool = False, page: bool = False, by_taken: bool = False) -> Q:
    path = FIELDS[key][0]
    negations = {"$ne": "$eq", "$nin": "$in", "$not_contains": "$contains"}
    options = {"few": few, "page": page, "by_taken": by_taken}
    if op in negations:
        return ~_field_q(key, negations[op], value, **options)
    if op == "$in":
        items = (_field_q(key, "$eq", item, **options) for item in value)
        return functools.reduce(operator.or_, items, Q(pk__in=[]))
    members_of = {"tags": _tag_subquery, "album": _album_subquery, "favourite_of": _favourite_subquery}.get(key)
    if members_of is not None:
        members = members_of(value)  # looks the tag, album or person up: once
        if few or (page and holds_for_many(members)):  # checked photo by photo, not listed first
            # On the side of the join whose index the grid walks: checked before the photo's row is read.
            walked = "metadata__image_id" if by_taken else "pk"
            if not few and (ids := listed(members)) is not None:
                return Q(AnyOf(walked, ids))
            return Q(Exists(members.filter(image_id=OuterRef(walked))))
        return Q(pk__in=members)
    if key == "has_gps":
        return Q(**{f"{path}__isnull": not value})
    if key in ("year", "taken_ts"):
        from gallery.models import Metadata

        # Sorted by date taken, the date index is both the order and the range: it stays usable.
        if not page or by_taken or not holds_for_many(Metadata.objects.filter(_taken_q("taken_at", key, op, value))):
            return _taken_q(path, key, op, value)
        return _taken_q(f"{path}__{Unindexed.lookup_name}", key, op, value)
    if op == "$eq":
        return Q(**{f"{path}__iexact" if key in TEXT_FIELDS else path: value})
    return Q(**{f"{path}__{_ORM_LOOKUP[op]}": value})


def _taken_q(path: str, key: str, op: str, value) -> Q:
    """A condition on the date taken (path: the field, from where the query starts)."""
    if key == "year":
        start, end = year_bounds(value)
        bounds = {
            "$eq": Q(**{f"{path}__gte": start, f"{path}__lt": end}),
            "$gt": Q(**{f"{path}__gte": end}),
            "$gte": Q(**{f"{path}__gte": start}),
            "$lt": Q(**{f"{path}__lt": start}),
            "$lte": Q(**{f"{path}__lt": end}),
        }
        return bounds[op]
    try:
        value = datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidFilter(f"taken_ts {value} is not a valid timestamp") from None
    return Q(**{path: value}) if op == "$eq" else Q(**{f"{path}__{_ORM_LOOKUP[op]}": value})


# The tag, album or person is looked up first and named by its id: each photo the grid walks is
# then one probe of the membership index, not a join, and PostgreSQL plans with its statistics
# for that id (how many photos it holds) instead of a guess for an id unknown until run time.


def _tag_subquery(name: str):
    from gallery.models import Metadata, Tag

    # The tag table's rows name the photo already (metadata's key is the photo's): no join through metadata.
    tags = list(Tag.objects.filter(name=fold_text(name)).values_list("pk", flat=True))
    return Metadata.tags.through.objects.filter(tag_id__in=tags).values(image_id=F("metadata_id"))


def _album_subquery(name: str):
    from gallery.models import Album

    albums = list(Album.objects.filter(name__iexact=name).values_list("pk", flat=True))
    return Album.photos.through.objects.filter(album_id__in=albums).values("image_id")


def _favourite_subquery(username: str):
    from django.contrib.auth import get_user_model

    from gallery.models import Favourite

    people = list(get_user_model().objects.filter(username__iexact=username).values_list("pk", flat=True))
    return Favourite.objects.filter(user_id__in=people).values("image_id")


def to_q(where: dict, *, few: bool = False, page: bool = False, by_taken: bool = False) -> Q:
    """Translate a validated filter into a Q over gallery.Image.

    few: the query is already narrowed to a handful of photos (search confirming its
    hits), so tags, albums and stars are checked per photo rather than by listing
    every photo with a tag (20 ms for a tag on a quarter of 100k photos). page: the
    query asks for the first photos in the grid's order, so a condition that holds
    for many photos is checked along that order (gallery.planner); by_taken: that
    order is the date taken, whose index conditions on the date then keep.
    """
    leaf = functools.partial(_field_q, few=few, page=page, by_taken=by_taken)
    return fold(where, leaf=leaf, both=operator.and_, either=operator.or_)


# --- to Chroma ----------------------------------------------------------------------


def _chroma_leaf(key: str, op: str, value) -> dict:
    # Chroma compares exactly: the index stores text fields folded (search.sync), so values are folded too.
    if key in TEXT_FIELDS:
        value = [fold_text(v) for v in value] if isinstance(value, list) else fold_text(value)
    if key not in LIST_FIELDS:
        return {key: {op: value}}
    if op in ("$eq", "$contains"):
        return {key: {"$contains": value}}
    if op in ("$ne", "$not_contains"):
        return {key: {"$not_contains": value}}
    items = [{key: {"$contains" if op == "$in" else "$not_contains": item}} for item in value]
    return items[0] if len(items) == 1 else {"$or" if op == "$in" else "$and": items}


def _chroma_join(glue: str):
    def join(left: dict, right: dict) -> dict:
        parts = [p for side in (left, right) for p in (side[glue] if list(side) == [glue] else [side])]
        return {glue: parts}

    return join


def to_chroma(where: dict) -> dict:
    """Translate a validated filter into Chroma's own where syntax (tags and albums become $contains)."""
    return fold(where, leaf=_chroma_leaf, both=_chroma_join("$and"), either=_chroma_join("$or"))


# --- the sidebar --------------------------------------------------------------------

FORMATS = [
    ("", "any format"),
    ("JPEG", "JPEG"),
    ("PNG", "PNG"),
    ("WEBP", "WebP"),
    ("GIF", "GIF"),
    ("TIFF", "TIFF"),
    ("BMP", "BMP"),
    ("HEIF", "HEIC"),
]
SORTS = [("newest", "newest added"), ("taken", "date taken")]


class FilterForm(forms.Form):
    """The filter sidebar, read from the URL; it builds a filter in the language above and nothing else."""

    category = forms.CharField(required=False, max_length=64)
    tag = forms.CharField(required=False, max_length=200, help_text="comma-separated; any of them")
    album = forms.CharField(required=False, max_length=120)
    favourites = forms.BooleanField(required=False, label="Only my favourites")
    camera = forms.CharField(required=False, max_length=64, help_text="make or model")
    year = forms.IntegerField(required=False, min_value=1900, max_value=2100, label="Year taken")
    taken_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    taken_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    has_gps = forms.NullBooleanField(
        required=False, widget=forms.Select(choices=[("", "any"), ("true", "with GPS"), ("false", "without GPS")])
    )
    format = forms.ChoiceField(required=False, choices=FORMATS)
    min_width = forms.IntegerField(required=False, min_value=1, max_value=100_000, label="Minimum width")
    max_width = forms.IntegerField(required=False, min_value=1, max_value=100_000, label="Maximum width")
    sort = forms.ChoiceField(required=False, choices=SORTS)

    FILTER_FIELDS = (
        "album",
        "category",
        "tag",
        "camera",
        "year",
        "taken_from",
        "taken_to",
        "has_gps",
        "format",
        "min_width",
        "max_width",
        "favourites",
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user  # whose favourites "Only my favourites" means

    def error_words(self, whole: str = "Filters") -> str:
        """What is wrong, in the words of the page: "Album: Ensure this value has at most 120 characters"
        (each field by its label, or its name in words; what is wrong with the form as a whole by whole)."""
        return "; ".join(
            f"{self[name].label if name in self.fields else whole}: {' '.join(errors)}"
            for name, errors in self.errors.items()
        )

    def tags(self) -> list[str]:
        raw = self.cleaned_data.get("tag") or ""
        return sorted({fold_text(t.strip()) for t in raw.split(",") if t.strip()})

    def active(self) -> list[tuple[str, str, str]]:
        """Return (field, label, value) for each filter in use, for the removable chips."""
        chips = []
        for name in self.FILTER_FIELDS:
            value = self.cleaned_data.get(name)
            if name == "favourites":
                if value:
                    chips.append((name, "favourites", "mine"))
            elif value not in (None, ""):
                label = {True: "with GPS", False: "without GPS"}[value] if name == "has_gps" else str(value)
                chips.append((name, self.fields[name].label or name.replace("_", " "), label))
        return chips

    def chips(self, params) -> list[dict]:
        """The active filters as removable chips: label, value, and the query string without that filter."""
        chips = []
        for name, label, value in self.active():
            remaining = params.copy()
            for key in (name, "page", "upto"):
                remaining.pop(key, None)
            chips.append({"name": name, "label": label, "value": value, "without": remaining.urlencode()})
        return chips

    def to_where(self) -> dict | None:
        """The sidebar's filter in the filter language (None when no filter is set)."""
        data = self.cleaned_data
        parts = []
        if data.get("favourites") and self.user is not None and self.user.is_authenticated:
            parts.append({"favourite_of": self.user.get_username()})
        if data.get("album"):
            parts.append({"album": data["album"]})
        if data.get("category"):
            parts.append({"category": data["category"]})
        if self.tags():
            parts.append({"tags": {"$in": self.tags()}})
        if data.get("camera"):
            parts.append({"$or": [{"camera_make": data["camera"]}, {"camera_model": data["camera"]}]})
        if data.get("year"):
            parts.append({"year": data["year"]})
        if data.get("taken_from"):
            start = datetime.combine(data["taken_from"], time.min, UTC)
            parts.append({"taken_ts": {"$gte": int(start.timestamp())}})
        if data.get("taken_to"):  # up to the end of that day: before the next one starts
            end = datetime.combine(data["taken_to"] + timedelta(days=1), time.min, UTC)
            parts.append({"taken_ts": {"$lt": int(end.timestamp())}})
        if data.get("has_gps") is not None:
            parts.append({"has_gps": data["has_gps"]})
        if data.get("format"):
            parts.append({"format": data["format"]})
        if data.get("min_width"):
            parts.append({"width": {"$gte": data["min_width"]}})
        if data.get("max_width"):
            parts.append({"width": {"$lte": data["max_width"]}})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def to_q(self, *, page: bool = False) -> Q:
        """The sidebar's filter as a Q (everything when no filter is set); page: for a page of the grid (to_q)."""
        where = self.to_where()
        return to_q(where, page=page, by_taken=self.cleaned_data.get("sort") == "taken") if where else Q()
