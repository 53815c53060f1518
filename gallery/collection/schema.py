"""One photo's record in an export, declared once: pydantic checks every field of every record on import."""

import base64
import binascii
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from gallery import storage
from gallery import vectors as stored_vectors
from gallery.models import Album, Image, Metadata

MAX_EXTRA_JSON = 64 * 1024
MAX_EXTRA_DEPTH = 16
UNIT_TOLERANCE = 1e-3


def _max_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


def _no_nul(value: str) -> str:
    # SQLite stores NUL characters, PostgreSQL refuses them mid-import: refuse them for both, up front.
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


def _text(model, name: str):
    """Text as long as the model's column allows, without NUL characters."""
    return Annotated[str, StringConstraints(max_length=_max_length(model, name), strict=True), AfterValidator(_no_nul)]


def leaves_data_dir(name: str) -> bool:
    """Whether a relative path from an input would point outside the data dir."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or "\x00" in name or (len(name) > 1 and name[1] == ":")


def _tag(value: str) -> str:
    if value != value.strip().lower():
        raise ValueError("tags are lowercase names without surrounding spaces")
    return value


def _extra(value: dict) -> dict:
    """Free-form metadata: an object of bounded size and depth (a deep one would exhaust the stack later)."""
    size, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_EXTRA_DEPTH:
            raise ValueError(f"nested deeper than {MAX_EXTRA_DEPTH} levels")
        if isinstance(item, str) and "\x00" in item or isinstance(item, dict) and any("\x00" in str(k) for k in item):
            raise ValueError("contains a NUL character")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        size += len(item) if isinstance(item, str | dict | list) else 8
        if isinstance(item, dict):
            size += sum(len(str(key)) for key in item)
        if size > MAX_EXTRA_JSON:
            raise ValueError(f"larger than {MAX_EXTRA_JSON // 1024} KB")
        stack.extend((child, depth + 1) for child in children)
    return value


def _vector(value) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be base64 text")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if not data or len(data) % 4:
        raise ValueError("not a whole number of float32 values")
    vector = stored_vectors.from_bytes(data)
    if not np.isfinite(vector).all():
        raise ValueError("holds NaN or infinity")
    # Every similarity assumes unit vectors: a longer one would top every search.
    length = float(np.linalg.norm(vector.astype(np.float64)))
    if abs(length - 1.0) > UNIT_TOLERANCE:
        raise ValueError(f"is not a unit vector (length {length:.4g})")
    return data


Tag = Annotated[
    str, StringConstraints(min_length=1, max_length=64, strict=True), AfterValidator(_tag), AfterValidator(_no_nul)
]


def _album_name(value: str) -> str:
    if value != value.strip() or not value:
        raise ValueError("album names are not empty and have no surrounding spaces")
    return value


AlbumName = Annotated[
    str,
    StringConstraints(max_length=_max_length(Album, "name"), strict=True),
    AfterValidator(_album_name),
    AfterValidator(_no_nul),
]
Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]*$", strict=True)]
Coordinate = Annotated[float, Field(allow_inf_nan=False)]


class EmbeddingRecord(BaseModel):
    model: Annotated[str, StringConstraints(min_length=1, max_length=200, strict=True)]
    vector: Annotated[bytes, BeforeValidator(_vector)]  # base64 of little-endian float32 in the document

    @property
    def dimension(self) -> int:
        return len(self.vector) // 4


class MetadataRecord(BaseModel):
    title: _text(Metadata, "title") = ""
    description: Annotated[str, StringConstraints(strict=True), AfterValidator(_no_nul)] = ""
    category: _text(Metadata, "category") = ""
    tags: list[Tag] = []
    camera_make: _text(Metadata, "camera_make") = ""
    camera_model: _text(Metadata, "camera_model") = ""
    lens: _text(Metadata, "lens") = ""
    taken_at: AwareDatetime | None = None
    latitude: Annotated[Coordinate, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[Coordinate, Field(ge=-180, le=180)] | None = None
    location: _text(Metadata, "location") = ""
    extra: Annotated[dict, AfterValidator(_extra)] = {}

    @model_validator(mode="after")
    def _gps_pair(self):
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude come together or not at all")
        return self


class Record(BaseModel):
    """One photo, keyed by the SHA-256 of its original bytes (the format is described in gallery.collection)."""

    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$", strict=True)]
    file: Annotated[str, StringConstraints(min_length=1, strict=True)]
    in_place: StrictBool
    original_name: _text(Image, "original_name")
    source_path: _text(Image, "source_path")
    source_size: Annotated[StrictInt, Field(ge=0)] | None = None
    source_mtime: Annotated[float, Field(allow_inf_nan=False)] | None = None
    format: Literal[tuple(storage.EXTENSIONS)]
    width: Annotated[StrictInt, Field(gt=0, lt=1_000_000)]
    height: Annotated[StrictInt, Field(gt=0, lt=1_000_000)]
    byte_size: Annotated[StrictInt, Field(ge=0)]
    phash: Annotated[Hex, Field(max_length=_max_length(Image, "phash"))]
    pixel_hash: Annotated[Hex, Field(max_length=_max_length(Image, "pixel_hash"))]
    added_at: AwareDatetime
    trashed_at: AwareDatetime | None = None
    metadata: MetadataRecord
    embedding: EmbeddingRecord | None = None
    albums: list[AlbumName] = []  # names (format version 2)

    @model_validator(mode="after")
    def _file_where_it_belongs(self):
        if self.in_place:
            path = Path(self.file)
            if not path.is_absolute() or ".." in path.parts or "\x00" in self.file:
                raise ValueError(f"file: an in-place photo needs an absolute path, got {self.file[:200]!r}")
        elif leaves_data_dir(self.file):
            raise ValueError(f"file: {self.file[:200]!r} tries to leave the data dir")
        elif self.file != storage.original_relpath(self.id, self.format):
            raise ValueError(f"file: must be {storage.original_relpath(self.id, self.format)}, got {self.file[:200]!r}")
        return self


class AlbumRecord(BaseModel):
    """An album's own facts (format version 2); its photos name it in their records."""

    name: AlbumName
    description: Annotated[str, StringConstraints(strict=True), AfterValidator(_no_nul)] = ""
    cover: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$", strict=True)] | None = None


def parse_record(raw) -> tuple[str, Record | None, list[str]]:
    """Return (id, record or None, problems in words) for one record as read from the document."""
    sha = str(raw.get("id"))[:70] if isinstance(raw, dict) else "?"
    try:
        return sha, Record.model_validate(raw), []
    except ValidationError as error:
        return sha, None, [_describe(problem) for problem in error.errors(include_url=False)]


def _describe(problem: dict) -> str:
    where = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "missing":
        return f"missing field {where!r}"
    message = problem["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
