"""Metadata filters in Chroma's `where` syntax: validated, then run by SQLite or by Chroma.

The product answers filters in SQLite, where they are indexed; Chroma's own
metadata scan costs 35-225 ms at 100k vectors. `to_chroma` exists for the
standalone ChromaDBBackend and for the benchmark's comparison.
"""

import functools
import operator
from datetime import datetime, timezone as dt_timezone

from django.db.models import Q

from search.errors import InvalidFilter

COMPARISON = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"}
SETS = {"$in", "$nin"}
ARRAY = {"$contains", "$not_contains"}
LOGICAL = {"$and", "$or"}

# filter key -> (ORM path, value type). year, has_gps and tags have rules of their own.
FIELDS = {
    "category": ("metadata__category", str),
    "camera_make": ("metadata__camera_make", str),
    "camera_model": ("metadata__camera_model", str),
    "format": ("format", str),
    "filename": ("original_name", str),
    "width": ("width", int),
    "height": ("height", int),
    "taken_ts": ("metadata__taken_at", int),
    "year": ("metadata__taken_at", int),
    "has_gps": ("metadata__latitude", bool),
    "tags": ("metadata__tags__name", str),
}
_ORM_LOOKUP = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


def _check_value(key: str, value, kind: type | None) -> None:
    if kind is None:  # free-form metadata: any scalar Chroma can store
        ok = isinstance(value, str | int | float | bool)
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        expected = {str: "text", int: "number", bool: "true/false", None: "text, number or true/false"}[kind]
        raise InvalidFilter(f"filter on '{key}' needs a {expected} value, not {value!r}")


def validate(where, *, free_form: bool = False) -> dict:
    """Check a filter; raise InvalidFilter naming what is wrong. Returns the filter.

    free_form accepts any metadata key (the standalone ChromaDBBackend); otherwise
    only the fields imgsim indexes.
    """
    if not isinstance(where, dict) or not where:
        raise InvalidFilter('a filter is a non-empty object such as {"category": "landscape"}')
    if len(where) > 1:  # {"a": 1, "b": 2} means both, as in Chroma's shorthand
        for key, value in where.items():
            validate({key: value}, free_form=free_form)
        return where
    ((key, condition),) = where.items()
    if key in LOGICAL:
        if not isinstance(condition, list) or not condition:
            raise InvalidFilter(f"'{key}' needs a non-empty list of filters")
        for part in condition:
            validate(part, free_form=free_form)
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
    ((operator, value),) = condition.items()
    allowed = COMPARISON | SETS | (ARRAY if key == "tags" or kind is None else set())
    if operator not in allowed:
        raise InvalidFilter(f"operator '{operator}' cannot filter '{key}'; use one of {', '.join(sorted(allowed))}")
    if operator in _ORM_LOOKUP and kind is not int:
        if kind is not None or not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidFilter(f"'{operator}' compares numbers; '{key}' is not a number")
    if operator in SETS:
        if not isinstance(value, list) or not value:
            raise InvalidFilter(f"'{operator}' on '{key}' needs a non-empty list")
        for item in value:
            _check_value(key, item, kind)
    else:
        _check_value(key, value, kind)
    return where


def _year_range(year: int) -> tuple[datetime, datetime]:
    year = int(year)
    if not 1 <= year < 9999:
        raise InvalidFilter(f"year {year} is out of range")
    return datetime(year, 1, 1, tzinfo=dt_timezone.utc), datetime(year + 1, 1, 1, tzinfo=dt_timezone.utc)


def _field_q(key: str, operator: str, value) -> Q:
    path = FIELDS[key][0]
    if operator == "$ne":
        return ~_field_q(key, "$eq", value)
    if operator == "$nin":
        return ~_field_q(key, "$in", value)
    if operator == "$not_contains":
        return ~_field_q(key, "$contains", value)
    if operator == "$in":
        q = Q(pk__in=[])
        for item in value:
            q |= _field_q(key, "$eq", item)
        return q
    if key == "tags":
        return Q(pk__in=_tag_subquery(value))
    if key == "has_gps":
        return Q(**{f"{path}__isnull": not value})
    if key == "year":
        start, end = _year_range(value)
        bounds = {"$eq": Q(**{f"{path}__gte": start, f"{path}__lt": end}), "$gt": Q(**{f"{path}__gte": end}),
                  "$gte": Q(**{f"{path}__gte": start}), "$lt": Q(**{f"{path}__lt": start}),
                  "$lte": Q(**{f"{path}__lt": end})}
        return bounds[operator]
    if key == "taken_ts":
        try:
            value = datetime.fromtimestamp(value, tz=dt_timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise InvalidFilter(f"taken_ts {value} is not a valid timestamp") from None
    if operator == "$eq":
        return Q(**{path: value})
    return Q(**{f"{path}__{_ORM_LOOKUP[operator]}": value})


def _tag_subquery(name: str):
    from gallery.models import Metadata

    return Metadata.objects.filter(tags__name=name.lower()).values("image_id")


def fold(where: dict, *, leaf, both, either):
    """Evaluate a validated filter tree bottom-up.

    leaf(key, operator, value) answers one condition; both / either combine the
    answers of $and / $or parts (sibling keys are combined with both).
    """
    result = None
    for key, condition in where.items():
        if key in LOGICAL:
            answer = functools.reduce(both if key == "$and" else either,
                                      [fold(part, leaf=leaf, both=both, either=either) for part in condition])
        else:
            if not isinstance(condition, dict):
                condition = {"$eq": condition}
            ((operator, value),) = condition.items()
            answer = leaf(key, operator, value)
        result = answer if result is None else both(result, answer)
    return result


def to_q(where: dict) -> Q:
    """Translate a validated filter into a Q over gallery.Image."""
    return fold(where, leaf=_field_q, both=operator.and_, either=operator.or_)


def _chroma_leaf(key: str, op: str, value) -> dict:
    if key != "tags":
        return {key: {op: value}}
    if op in ("$eq", "$contains"):
        return {"tags": {"$contains": value}}
    if op in ("$ne", "$not_contains"):
        return {"tags": {"$not_contains": value}}
    items = [{"tags": {"$contains" if op == "$in" else "$not_contains": item}} for item in value]
    return items[0] if len(items) == 1 else {"$or" if op == "$in" else "$and": items}


def _chroma_join(glue: str):
    def join(left: dict, right: dict) -> dict:
        parts = [p for side in (left, right) for p in (side[glue] if list(side) == [glue] else [side])]
        return {glue: parts}
    return join


def to_chroma(where: dict) -> dict:
    """Translate a validated filter into Chroma's own where syntax (tags become $contains)."""
    return fold(where, leaf=_chroma_leaf, both=_chroma_join("$and"), either=_chroma_join("$or"))
