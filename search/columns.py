"""The column cache: an in-process copy of the filterable fields, to filter 100k photos in a millisecond.

SQLite's planner cannot know that category "x" is rare when most photos share two
categories, and scans every photo (30-40 ms at 100k). numpy over a few arrays takes
well under a millisecond for any filter. The copy is rebuilt when the index
generation says something changed: at once after this process's own changes, at
most every REFRESH_SECONDS for other processes' changes; callers re-check
their final hits against SQLite, so a stale copy can only delay a new match, never
return a wrong one. The vectors are not copied: they are read from the memory-mapped
file every process shares (gallery.vector_file).
"""

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from gallery.filters import InvalidFilter, fold, fold_text, year_bounds
from gallery.models import Album, Favourite, Metadata
from gallery.vector_file import VectorTable, read_ahead, table_for
from imgsim_site import heap
from search.embeddings import model_name

REFRESH_SECONDS = 2.0
_TEXT_FIELDS = {
    "category",
    "camera_make",
    "camera_model",
    "location",
    "format",
    "filename",
}  # stored folded (fold_text)


@dataclass
class Columns:
    generation: int
    built_at: float
    model: str
    ids: np.ndarray  # int64, sorted
    vectors: VectorTable  # the vectors of ids, in that order, mostly from the file all processes share
    # Text columns as integer codes: comparing 100k codes takes microseconds, 100k strings milliseconds.
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    vocabulary: dict[str, dict[str, int]] = field(default_factory=dict)
    numbers: dict[str, np.ndarray] = field(default_factory=dict)  # float64, NaN when unknown
    # tag, folded album name or folded username -> positions in ids of its photos (int32, sorted): a mask
    # is then set by position (np.isin of a tag on a quarter of a million photos took ~9 ms).
    tags: dict[str, np.ndarray] = field(default_factory=dict)
    albums: dict[str, np.ndarray] = field(default_factory=dict)
    favourites: dict[str, np.ndarray] = field(default_factory=dict)

    def mask(self, where: dict) -> np.ndarray:
        """Evaluate a validated filter; return a boolean mask over self.ids."""
        return fold(where, leaf=self._field, both=np.logical_and, either=np.logical_or)

    def _field(self, key: str, operator: str, value) -> np.ndarray:
        negations = {"$ne": "$eq", "$nin": "$in", "$not_contains": "$contains"}
        if operator in negations:
            return ~self._field(key, negations[operator], value)
        if operator == "$in":
            result = np.zeros(len(self.ids), dtype=bool)
            for item in value:
                result |= self._field(key, "$eq", item)
            return result
        if key in ("tags", "album", "favourite_of"):
            lists = {"tags": self.tags, "album": self.albums, "favourite_of": self.favourites}[key]
            result = np.zeros(len(self.ids), dtype=bool)
            result[lists.get(fold_text(str(value)), [])] = True
            return result
        if key == "has_gps":
            return self.numbers["has_gps"] == (1.0 if value else 0.0)
        if key in _HASHED:
            return self.codes[key] == _hash(fold_text(value))
        if key in _TEXT_FIELDS:
            return self.codes[key] == self.vocabulary[key].get(fold_text(value), -1)
        with np.errstate(invalid="ignore"):  # NaN (unknown) never matches
            if key == "year":
                timestamps = self.numbers["taken_ts"]
                start, end = (bound.timestamp() for bound in year_bounds(value))
                return {
                    "$eq": (timestamps >= start) & (timestamps < end),
                    "$gt": timestamps >= end,
                    "$gte": timestamps >= start,
                    "$lt": timestamps < start,
                    "$lte": timestamps < end,
                }[operator]
            if key not in self.numbers:
                raise InvalidFilter(f"unknown filter field '{key}'")
            column, value = self.numbers[key], float(value)
            return {
                "$eq": column == value,
                "$gt": column > value,
                "$gte": column >= value,
                "$lt": column < value,
                "$lte": column <= value,
            }[operator]


class ColumnCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._columns: Columns | None = None

    def columns(self, generation: int, *, exact: bool = False) -> Columns:
        """Return the columns; up to REFRESH_SECONDS old unless exact (as of this generation) is asked."""
        current = self._columns
        fresh_enough = (
            current is not None
            and current.model == model_name()
            and (
                current.generation == generation
                or (not exact and time.monotonic() - current.built_at < REFRESH_SECONDS)
            )
        )
        if fresh_enough:
            return current
        with self._lock:
            if self._columns is current:  # nobody rebuilt while we waited
                self._columns = build_columns(generation)
                import torch  # noqa: F401  (every search's pass runs on it: imported once, then frozen with the rest)

                heap.settle("search")
            return self._columns

    def as_of(self, generation: int) -> Columns | None:
        """The columns if they are exactly as of this generation, else None (nothing is built)."""
        current = self._columns
        fresh = current is not None and current.generation == generation and current.model == model_name()
        return current if fresh else None

    def expire(self) -> None:
        """This process changed the index: its next read rebuilds (reusing the vectors) and shows the change."""
        current = self._columns
        if current is not None:
            current.built_at = float("-inf")

    def clear(self) -> None:
        with self._lock:
            self._columns = None


_BATCH = 20_000
# (field read from the database, column it fills); text columns become codes into a vocabulary.
_READ = (
    ("pk", "pk"),
    ("format", "format"),
    ("original_name", "filename"),
    ("width", "width"),
    ("height", "height"),
    ("metadata__category", "category"),
    ("metadata__camera_make", "camera_make"),
    ("metadata__camera_model", "camera_model"),
    ("metadata__taken_at", "taken_ts"),
    ("metadata__latitude", "has_gps"),
    ("metadata__location", "location"),
)


# Nearly every photo has its own file name: a vocabulary of a million names took ~200 MB per
# process, 64-bit hashes take 8 MB (a collision could only nominate a photo SQLite then rejects).
_HASHED = {"filename"}


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def _array(column: str, values: tuple, vocabulary: dict[str, dict[str, int]]) -> np.ndarray:
    """One batch of one column as numbers: text as codes (folded), dates as timestamps, NaN when unknown."""
    if column in _HASHED:
        return np.fromiter((_hash(fold_text(v or "")) for v in values), dtype=np.int64)
    if column in _TEXT_FIELDS:
        words = vocabulary[column]
        return np.fromiter((words.setdefault(fold_text(v or ""), len(words)) for v in values), dtype=np.int32)
    if column == "taken_ts":
        return np.array([v.timestamp() if v else np.nan for v in values], dtype=np.float64)
    if column == "has_gps":
        return np.array([0.0 if v is None else 1.0 for v in values], dtype=np.float64)
    return np.array(values, dtype=np.float64 if column != "pk" else np.int64)


def build_columns(generation: int) -> Columns:
    """Read the filterable fields of every searchable photo into arrays, beside the shared vector file."""
    from search.sync import indexable

    current_model = model_name()
    rows = indexable().order_by("pk").values_list(*(name for name, _ in _READ)).iterator(chunk_size=_BATCH)
    # Batch by batch into arrays: a million rows of tuples at once took ~900 MB that the heap kept.
    parts: dict[str, list[np.ndarray]] = {name: [] for name, _ in _READ}
    vocabulary: dict[str, dict[str, int]] = {column: {} for _, column in _READ if column in _TEXT_FIELDS - _HASHED}
    while batch := list(itertools.islice(rows, _BATCH)):
        for (name, column), values in zip(_READ, zip(*batch)):
            parts[name].append(_array(column, values, vocabulary))
    arrays = {name: np.concatenate(found) if found else np.zeros(0) for name, found in parts.items()}
    ids = arrays.pop("pk").astype(np.int64)
    keep, vectors = table_for(ids, current_model)  # a photo whose stored vector is missing is left out
    if vectors.file is not None:
        read_ahead(vectors.file)  # every search reads rows of it
    columns = Columns(
        generation=generation, built_at=time.monotonic(), model=current_model, ids=ids[keep], vectors=vectors
    )
    for name, column in _READ[1:]:
        if column in _HASHED:
            columns.codes[column] = arrays[name].astype(np.int64)[keep]
        elif column in _TEXT_FIELDS:
            columns.codes[column] = arrays[name].astype(np.int32)[keep]
            columns.vocabulary[column] = vocabulary[column]
        else:
            columns.numbers[column] = arrays[name].astype(np.float64)[keep]
    by_tag: dict[str, list[int]] = {}
    for image_id, tag in Metadata.tags.through.objects.values_list("metadata_id", "tag__name").iterator(_BATCH):
        by_tag.setdefault(tag, []).append(image_id)
    columns.tags = {tag: _positions(columns.ids, ids) for tag, ids in by_tag.items()}
    by_album: dict[str, list[int]] = {}
    for image_id, name in Album.photos.through.objects.values_list("image_id", "album__name"):
        by_album.setdefault(fold_text(name), []).append(image_id)
    columns.albums = {name: _positions(columns.ids, ids) for name, ids in by_album.items()}
    by_user: dict[str, list[int]] = {}
    for image_id, username in Favourite.objects.values_list("image_id", "user__username"):
        by_user.setdefault(fold_text(username), []).append(image_id)
    columns.favourites = {name: _positions(columns.ids, ids) for name, ids in by_user.items()}
    return columns


def _positions(ids: np.ndarray, members: list[int]) -> np.ndarray:
    """Where these image ids are in ids (sorted), those that are: a photo not searchable is left out."""
    members = np.array(sorted(members), dtype=np.int64)
    at = np.searchsorted(ids, members).clip(0, max(len(ids) - 1, 0))
    return at[ids[at] == members].astype(np.int32) if len(ids) else np.zeros(0, dtype=np.int32)


column_cache = ColumnCache()


def searchable_vectors(generation: int) -> tuple[np.ndarray, VectorTable]:
    """Every searchable photo's id (sorted) and vector as of this generation, for the duplicate scan:
    the column cache's when it is that fresh, else the ids alone are read (building the whole
    cache, every filterable field, took ~18 s at a million photos; the ids take under one)."""
    from search.sync import indexable

    cached = column_cache.as_of(generation)
    if cached is not None:
        return cached.ids, cached.vectors
    rows = indexable().order_by("pk").values_list("pk", flat=True).iterator(chunk_size=_BATCH)
    ids = np.fromiter(rows, dtype=np.int64)
    keep, vectors = table_for(ids, model_name())
    return ids[keep], vectors
