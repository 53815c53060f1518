"""Metadata filters in Chroma's `where` syntax: validated, then run by SQLite or by Chroma.

The product answers filters in SQLite, where they are indexed; Chroma's own
metadata scan costs 35-225 ms at 100k vectors. `to_chroma` exists for the
standalone ChromaDBBackend and for the benchmark's comparison.
"""

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


def to_q(where: dict) -> Q:
    """Translate a validated filter into a Q over gallery.Image."""
    q = Q()
    for key, condition in where.items():
        if key in LOGICAL:
            parts = [to_q(part) for part in condition]
            combined = parts[0]
            for part in parts[1:]:
                combined = combined & part if key == "$and" else combined | part
            q &= combined
            continue
        if not isinstance(condition, dict):
            condition = {"$eq": condition}
        ((operator, value),) = condition.items()
        q &= _field_q(key, operator, value)
    return q


def to_chroma(where: dict) -> dict:
    """Translate a validated filter into Chroma's own where syntax (tags become $contains)."""
    parts = []
    for key, condition in where.items():
        if key in LOGICAL:
            translated = [to_chroma(part) for part in condition]
            parts.append(translated[0] if len(translated) == 1 else {key: translated})
            continue
        if not isinstance(condition, dict):
            condition = {"$eq": condition}
        ((operator, value),) = condition.items()
        if key == "tags":
            if operator in ("$eq", "$contains"):
                parts.append({"tags": {"$contains": value}})
            elif operator in ("$ne", "$not_contains"):
                parts.append({"tags": {"$not_contains": value}})
            else:
                op = "$contains" if operator == "$in" else "$not_contains"
                items = [{"tags": {op: item}} for item in value]
                glue = "$or" if operator == "$in" else "$and"
                parts.append(items[0] if len(items) == 1 else {glue: items})
        else:
            parts.append({key: {operator: value}})
    return parts[0] if len(parts) == 1 else {"$and": parts}
