"""Export and import of the whole library: a versioned JSON document, optionally zipped with the files.

The document (format "imgsim-collection", version 1) is one JSON object:

    {"format": "imgsim-collection", "version": 1, "exported_at": ISO-8601,
     "model": current embedding model, "dimension": its vector length or null,
     "images": [RECORD, ...], "count": number of records}

and each RECORD describes one photo, keyed by the SHA-256 of its original bytes:

    {"id": sha256 hex, "file": "originals/ab/cdef....jpg" (in storage) or an absolute
     path (in_place), "in_place": bool, "original_name", "source_path", "source_size",
     "source_mtime", "format" (JPEG PNG WEBP GIF TIFF BMP HEIF), "width", "height",
     "byte_size", "phash", "pixel_hash", "added_at", "trashed_at" (ISO-8601 or null),
     "metadata": {"title", "description", "category", "tags": [...], "camera_make",
                  "camera_model", "lens", "taken_at", "latitude", "longitude",
                  "location", "extra": {...}},
     "embedding": {"model": name, "vector": base64 of little-endian float32} or null}

Records are sorted by id and written one at a time, and "count" comes last, so
neither side holds the library in memory. A `--with-files` bundle is a zip holding
this document as `collection.json` beside `originals/...` and `renditions/...` at
their storage paths; in a bundle every photo is a stored one.

Import checks the whole input before it changes anything (one clear ImportRefused
otherwise), then adds photos in batches; photos already in the library (same
SHA-256) are left as they are, so an interrupted import simply runs again.
"""

import base64
import binascii
import contextlib
import gzip
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from gallery import storage
from gallery import vectors as stored_vectors
from gallery.ingest import tags_named
from gallery.models import Image, ImageVector, Metadata
from search.models import IndexOutbox

log = logging.getLogger(__name__)

FORMAT = "imgsim-collection"
VERSION = 1
DOCUMENT_NAME = "collection.json"
CHUNK = 1000
# A real document compresses about 1.3x (vectors are noise to gzip); far more is a bomb.
MAX_EXPANSION = 64
MAX_EXTRA_JSON = 64 * 1024
MAX_ERRORS_SHOWN = 5

_SHA = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]*$")


class ImportRefused(Exception):
    """The input is not a collection this instance can import; nothing was changed."""


# --- export -----------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _record(image: Image, tags: list[str], vector: bytes | None, *, bundle: bool) -> dict:
    meta = getattr(image, "metadata", None)
    in_place = image.in_place and not bundle
    return {
        "id": image.sha256,
        "file": image.file if in_place else storage.original_relpath(image.sha256, image.format),
        "in_place": in_place,
        "original_name": image.original_name,
        "source_path": image.source_path,
        "source_size": image.source_size if in_place else None,
        "source_mtime": image.source_mtime if in_place else None,
        "format": image.format,
        "width": image.width,
        "height": image.height,
        "byte_size": image.byte_size,
        "phash": image.phash,
        "pixel_hash": image.pixel_hash,
        "added_at": _iso(image.added_at),
        "trashed_at": _iso(image.trashed_at),
        "metadata": {
            "title": meta.title if meta else "",
            "description": meta.description if meta else "",
            "category": meta.category if meta else "",
            "tags": tags,
            "camera_make": meta.camera_make if meta else "",
            "camera_model": meta.camera_model if meta else "",
            "lens": meta.lens if meta else "",
            "taken_at": _iso(meta.taken_at) if meta else None,
            "latitude": meta.latitude if meta else None,
            "longitude": meta.longitude if meta else None,
            "location": meta.location if meta else "",
            "extra": meta.extra if meta else {},
        },
        "embedding": (
            {"model": image.embedding_model, "vector": base64.b64encode(bytes(vector)).decode("ascii")}
            if vector is not None and image.embedding_state == Image.Embedding.DONE
            else None
        ),
    }


def _images_in_chunks() -> Iterator[list[Image]]:
    """Yield every photo (trash included) in SHA-256 order, a chunk at a time."""
    after = ""
    while True:
        chunk = list(Image.objects.filter(sha256__gt=after).select_related("metadata").order_by("sha256")[:CHUNK])
        if not chunk:
            return
        yield chunk
        after = chunk[-1].sha256


def iter_records(*, bundle: bool = False) -> Iterator[tuple[Image, dict]]:
    """Yield (image, export record) for every photo, reading a chunk of rows at a time."""
    through = Metadata.tags.through
    for chunk in _images_in_chunks():
        ids = [image.pk for image in chunk]
        tags: dict[int, list[str]] = {}
        for image_id, name in through.objects.filter(metadata_id__in=ids).values_list("metadata_id", "tag__name"):
            tags.setdefault(image_id, []).append(name)
        vectors = dict(ImageVector.objects.filter(image_id__in=ids).values_list("image_id", "data"))
        for image in chunk:
            yield image, _record(image, sorted(tags.get(image.pk, [])), vectors.get(image.pk), bundle=bundle)


def _stored_dimension(model: str) -> int | None:
    """The length of the stored vectors of this model, if there are any."""
    sample = ImageVector.objects.filter(image__embedding_model=model).values_list("data", flat=True).first()
    return len(sample) // 4 if sample else None


def _header() -> dict:
    from search.embeddings import model_name

    return {"format": FORMAT, "version": VERSION, "exported_at": timezone.now().isoformat(),
            "model": model_name(), "dimension": _stored_dimension(model_name())}


def document_chunks(records: Iterator[dict] | None = None) -> Iterator[str]:
    """Yield the export document as text, one record at a time."""
    header = json.dumps(_header(), ensure_ascii=False)
    yield header[:-1] + ', "images": ['
    count = 0
    for record in records if records is not None else (record for _, record in iter_records()):
        yield ("\n" if count == 0 else ",\n") + json.dumps(record, ensure_ascii=False, sort_keys=True)
        count += 1
    yield f'\n], "count": {count}}}\n'


@dataclass
class ExportReport:
    count: int = 0
    files: int = 0
    missing: list[str] = field(default_factory=list)  # originals not found, left out of a bundle


def export_collection(path, *, with_files: bool = False, on_record: Callable[[], None] | None = None) -> ExportReport:
    """Write the whole library to path: JSON, gzip-compressed JSON (.gz), or with files a zip bundle.

    The output appears under its name only when complete (temp file and rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = ExportReport()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-export-")
    os.close(fd)
    try:
        if with_files:
            _write_bundle(Path(tmp), report, on_record)
        else:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(tmp, "wt", encoding="utf-8") as handle:
                for chunk in document_chunks(_counted(iter_records(), report, on_record)):
                    handle.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return report


def _counted(records, report: ExportReport, on_record) -> Iterator[dict]:
    for _, record in records:
        report.count += 1
        if on_record:
            on_record()
        yield record


def _write_bundle(target: Path, report: ExportReport, on_record) -> None:
    """Write a zip with every original and rendition, and the document describing them last."""

    def records() -> Iterator[dict]:
        for image, record in iter_records(bundle=True):
            original = storage.original_path(image)
            if not original.is_file():
                report.missing.append(str(original))
                continue
            # Photos are compressed already: storing them costs nothing and reads fast.
            bundle.write(original, record["file"], compress_type=zipfile.ZIP_STORED)
            report.files += 1
            for kind in storage.RENDITIONS:
                rendition = storage.rendition_path(image, kind)
                if rendition.is_file():
                    bundle.write(rendition, storage.rendition_relpath(image.sha256, kind),
                                 compress_type=zipfile.ZIP_STORED)
                    report.files += 1
            report.count += 1
            if on_record:
                on_record()
            yield record

    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as bundle:
        # The document goes to a spooled temp file while the files stream into the zip,
        # so a photo whose original vanished is left out of both.
        with tempfile.TemporaryFile("w+b", dir=target.parent) as document:
            for chunk in document_chunks(records()):
                document.write(chunk.encode("utf-8"))
            document.seek(0)
            with bundle.open(DOCUMENT_NAME, "w", force_zip64=True) as member:
                shutil.copyfileobj(document, member, 1 << 20)


# --- reading an input -------------------------------------------------------------


class _Bounded(io.RawIOBase):
    """A reader that refuses to yield more than limit bytes: a compressed bomb stops early."""

    def __init__(self, raw, limit: int, what: str):
        self.raw, self.limit, self.what, self.seen = raw, limit, what, 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()
        super().close()

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.seen += len(data)
        if self.seen > self.limit:
            raise ImportRefused(f"{self.what} expands to more than {self.limit:,} bytes: refusing a compression bomb")
        buffer[: len(data)] = data
        return len(data)


class Source:
    """An input file: plain or gzip-compressed JSON, or a zip bundle; sniffed from its bytes."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as handle:
                magic = handle.read(4)
            self.size = self.path.stat().st_size
        except OSError as error:
            raise ImportRefused(f"cannot read {self.path}: {error.strerror or error}") from None
        self.kind = "zip" if magic.startswith(b"PK\x03\x04") else "gzip" if magic.startswith(b"\x1f\x8b") else "json"
        self.zip: zipfile.ZipFile | None = None
        self.members: dict[str, zipfile.ZipInfo] = {}
        if self.kind == "zip":
            self._open_zip()

    def _open_zip(self) -> None:
        try:
            self.zip = zipfile.ZipFile(self.path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise ImportRefused(f"{self.path.name} is not a readable zip: {error}") from None
        declared = 0
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            if _leaves(name):
                raise ImportRefused(f"zip entry {name!r} tries to leave the data dir")
            if name in self.members:
                raise ImportRefused(f"zip entry {name!r} appears twice")
            if info.file_size > 1_000_000 and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
                raise ImportRefused(
                    f"zip entry {name!r} claims {info.file_size:,} bytes from {info.compress_size:,}: "
                    "refusing a compression bomb"
                )
            declared += info.file_size
            self.members[name] = info
        if DOCUMENT_NAME not in self.members:
            raise ImportRefused(f"{self.path.name} has no {DOCUMENT_NAME}: not an imgsim bundle")
        free = shutil.disk_usage(storage.media_root() if storage.media_root().exists() else Path.cwd()).free
        if declared > free:
            raise ImportRefused(f"the bundle needs {declared:,} bytes; only {free:,} are free in the data dir")

    def document(self):
        """Open the document as a binary stream, bounded against compression bombs."""
        if self.kind == "zip":
            info = self.members[DOCUMENT_NAME]
            return _Bounded(self.zip.open(info), info.file_size, DOCUMENT_NAME)
        raw = open(self.path, "rb")
        if self.kind == "gzip":
            return _Bounded(gzip.GzipFile(fileobj=raw), MAX_EXPANSION * self.size + (1 << 20), self.path.name)
        return raw

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _leaves(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or "\x00" in name or (len(name) > 1 and name[1] == ":")


@contextlib.contextmanager
def _reading(source: Source) -> Iterator:
    """Open the document for ijson; turn parse and read errors into one clear refusal."""
    import ijson

    with source.document() as stream:
        try:
            yield io.BufferedReader(stream) if isinstance(stream, io.RawIOBase) else stream
        except ijson.JSONError as error:
            raise ImportRefused(f"{source.path.name} is not valid JSON: {error}") from None
        except (EOFError, OSError, zipfile.BadZipFile) as error:
            raise ImportRefused(f"{source.path.name} is damaged: {error}") from None


def _items(source: Source, prefix: str) -> Iterator:
    import ijson

    with _reading(source) as reader:
        yield from ijson.items(reader, prefix, use_float=True)


def _read_header(source: Source) -> dict:
    """Return the document's top-level scalars before "images" (where imgsim writes them), in one read."""
    import ijson

    header = {}
    with _reading(source) as reader:
        for prefix, event, value in ijson.parse(reader, use_float=True):
            if prefix == "" and event == "map_key" and value == "images":
                break
            if prefix and "." not in prefix and event in ("string", "number", "boolean", "null"):
                header[prefix] = value
    return header


# --- validating -------------------------------------------------------------------


_TEXT = {name: Metadata._meta.get_field(name).max_length for name in
         ("title", "category", "camera_make", "camera_model", "lens", "location")}
_IMAGE_TEXT = {name: Image._meta.get_field(name).max_length for name in
               ("original_name", "source_path", "phash", "pixel_hash")}


class _Problems:
    def __init__(self):
        self.lines: list[str] = []
        self.count = 0

    def add(self, where: str, message: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_ERRORS_SHOWN:
            self.lines.append(f"{where}: {message}")

    def raise_if_any(self, name: str) -> None:
        if self.count:
            more = f"\n  ... and {self.count - len(self.lines)} more" if self.count > len(self.lines) else ""
            raise ImportRefused(f"{name} cannot be imported ({self.count} problem(s)); nothing was changed:\n  "
                                + "\n  ".join(self.lines) + more)


def _datetime(value, nullable: bool) -> datetime | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise ValueError("expected an ISO-8601 date-time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("date-time without a time zone")
    return parsed


def _number(value, *, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("expected a number")
    if not low <= value <= high:
        raise ValueError(f"out of range {low}..{high}")
    return float(value)


def _check_record(record) -> tuple[str, list[str]]:
    """Return the record's id and problems; the record is normalised in place (dates parsed, vector decoded)."""
    if not isinstance(record, dict):
        return "?", ["is not an object"]
    problems: list[str] = []
    sha = record.get("id")
    if not isinstance(sha, str) or not _SHA.match(sha):
        return str(sha)[:70], ["id must be the 64-character lowercase hex SHA-256 of the original"]

    def check(name, test, message):
        try:
            if not test(record[name]):
                problems.append(f"{name}: {message}")
        except KeyError:
            problems.append(f"missing field {name!r}")
        except (TypeError, ValueError) as error:
            problems.append(f"{name}: {error}")

    check("format", lambda v: v in storage.EXTENSIONS, f"must be one of {', '.join(storage.EXTENSIONS)}")
    for name in ("width", "height"):
        check(name, lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1_000_000,
              "must be a positive integer")
    check("byte_size", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "must be >= 0")
    check("in_place", lambda v: isinstance(v, bool), "must be true or false")
    for name, limit in _IMAGE_TEXT.items():
        check(name, lambda v, limit=limit: isinstance(v, str) and len(v) <= limit, f"must be text up to {limit}")
    for name in ("phash", "pixel_hash"):
        check(name, lambda v: _HEX.match(v) is not None, "must be hex")
    check("source_size", lambda v: v is None or (isinstance(v, int) and v >= 0), "must be a size or null")
    check("source_mtime", lambda v: v is None or (isinstance(v, (int, float)) and math.isfinite(v)),
          "must be a number or null")
    for name, nullable in (("added_at", False), ("trashed_at", True)):
        try:
            record[name] = _datetime(record.get(name), nullable)
        except ValueError as error:
            problems.append(f"{name}: {error}")
    problems += _check_file(record, sha)
    problems += _check_metadata(record.get("metadata"))
    problems += _check_embedding(record)
    return sha, problems


def _check_file(record: dict, sha: str) -> list[str]:
    file, in_place = record.get("file"), record.get("in_place")
    if not isinstance(file, str) or not file:
        return ["file: missing"]
    if in_place is True:
        path = Path(file)
        if not path.is_absolute() or ".." in path.parts or "\x00" in file:
            return [f"file: an in-place photo needs an absolute path, got {file[:200]!r}"]
        return []
    if _leaves(file):
        return [f"file: {file[:200]!r} tries to leave the data dir"]
    if record.get("format") in storage.EXTENSIONS and file != storage.original_relpath(sha, record["format"]):
        return [f"file: must be {storage.original_relpath(sha, record['format'])}, got {file[:200]!r}"]
    return []


def _check_metadata(meta) -> list[str]:
    if not isinstance(meta, dict):
        return ["metadata: missing or not an object"]
    problems = []
    for name, limit in _TEXT.items():
        if not isinstance(meta.get(name, ""), str) or len(meta.get(name, "")) > limit:
            problems.append(f"metadata.{name}: must be text up to {limit} characters")
    if not isinstance(meta.get("description", ""), str):
        problems.append("metadata.description: must be text")
    tags = meta.get("tags", [])
    if not isinstance(tags, list) or not all(
        isinstance(t, str) and t and t == t.strip().lower() and len(t) <= 64 for t in tags
    ):
        problems.append("metadata.tags: must be a list of lowercase names up to 64 characters")
    try:
        meta["taken_at"] = _datetime(meta.get("taken_at"), True)
        lat = _number(meta.get("latitude"), low=-90, high=90)
        lon = _number(meta.get("longitude"), low=-180, high=180)
        if (lat is None) != (lon is None):
            problems.append("metadata: latitude and longitude come together or not at all")
    except ValueError as error:
        problems.append(f"metadata: {error}")
    extra = meta.get("extra", {})
    if not isinstance(extra, dict) or len(json.dumps(extra)) > MAX_EXTRA_JSON:
        problems.append(f"metadata.extra: must be an object under {MAX_EXTRA_JSON // 1024} KB")
    return problems


def _check_embedding(record: dict) -> list[str]:
    embedding = record.get("embedding")
    if embedding is None:
        return []
    if not isinstance(embedding, dict) or not isinstance(embedding.get("model"), str) or not embedding["model"]:
        return ["embedding: must be null or {model, vector}"]
    try:
        data = base64.b64decode(embedding.get("vector", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        return ["embedding.vector: not base64"]
    if not data or len(data) % 4:
        return ["embedding.vector: not a whole number of float32 values"]
    vector = stored_vectors.from_bytes(data)
    if not np.isfinite(vector).all():
        return ["embedding.vector: holds NaN or infinity"]
    embedding["vector"] = data
    return []


@dataclass
class Plan:
    """What validation found: how many records, which are new, and the model's dimension."""

    source: Source
    model: str
    records: int = 0
    new: int = 0
    known: int = 0
    known_ids: set[str] = field(default_factory=set)  # photos the library already has


def validate(source: Source) -> Plan:
    """Read the whole input once and raise ImportRefused on the first kind of problem found."""
    from search.embeddings import model_name

    name = source.path.name
    header = _read_header(source)
    if header.get("format") != FORMAT:
        raise ImportRefused(f"{name} is not an imgsim collection (its \"format\" is not {FORMAT!r})")
    version = header.get("version")
    if version != VERSION:
        raise ImportRefused(f"{name} is format version {version!r}; this imgsim reads version {VERSION}")
    plan = Plan(source, model=model_name())
    problems = _Problems()
    seen: set[str] = set()
    expected_files: set[str] = set()
    dimensions: dict[str, int] = {}
    if isinstance(header.get("model"), str) and isinstance(header.get("dimension"), int):
        dimensions[header["model"]] = header["dimension"]
    known = set(Image.objects.values_list("sha256", flat=True))
    current_dimension = CurrentDimension(plan.model)
    for number, record in enumerate(_items(source, "images.item"), start=1):
        sha, record_problems = _check_record(record)
        where = f"image {number} ({sha[:12]})"
        for problem in record_problems:
            problems.add(where, problem)
        if record_problems:
            continue
        if sha in seen:
            problems.add(where, "duplicate id: this photo appears twice")
            continue
        seen.add(sha)
        plan.records += 1
        embedding = record["embedding"]
        if embedding:
            dimension = len(embedding["vector"]) // 4
            expected = dimensions.setdefault(embedding["model"], dimension)
            if embedding["model"] == plan.model and current_dimension() not in (None, dimension):
                problems.add(where, f"embedding dimension {dimension} does not match {plan.model} "
                                    f"({current_dimension()})")
            elif dimension != expected:
                problems.add(where, f"embedding dimension {dimension} differs from {expected} of the same model")
        if record["in_place"] is False:
            expected_files.add(record["file"])
            expected_files.update(storage.rendition_relpath(sha, kind) for kind in storage.RENDITIONS)
        if sha in known:
            plan.known += 1
            plan.known_ids.add(sha)
            continue
        plan.new += 1
        if not _original_available(source, record):
            problems.add(where, f"original not found: {record['file'][:200]}")
    if source.kind == "zip":
        for member in source.members:
            if member != DOCUMENT_NAME and member not in expected_files:
                problems.add(f"zip entry {member[:200]!r}", "is not a file of any photo in the document")
    problems.raise_if_any(name)
    return plan


class CurrentDimension:
    """The vector length of the configured model, looked up once and only if a record needs it.

    From the stored vectors when there are any; otherwise the model must be loaded,
    which an import of another model's vectors (or of none) never pays for.
    """

    def __init__(self, model: str):
        self.model, self.looked_up, self.value = model, False, None

    def __call__(self) -> int | None:
        if not self.looked_up:
            self.looked_up = True
            self.value = _stored_dimension(self.model)
            if self.value is None:
                from search.embeddings import get_embedder

                try:
                    self.value = get_embedder().dimension
                except Exception:  # no model here: vectors of that model are still checked against each other
                    self.value = None
        return self.value


def _original_available(source: Source, record: dict) -> bool:
    if record["in_place"]:
        return Path(record["file"]).is_file()
    return record["file"] in source.members or (storage.media_root() / record["file"]).is_file()


# --- importing --------------------------------------------------------------------


@dataclass
class ImportReport:
    added: int = 0
    known: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    renditions_made: int = 0
    vectors_imported: int = 0
    to_embed: int = 0


def import_collection(path, *, collection: str = "", on_record: Callable[[], None] | None = None,
                      batch_size: int = 500) -> ImportReport:
    """Validate the input, then add every photo it holds that the library lacks; return what happened.

    With collection, each imported photo is also tagged with that name. Vectors are
    taken as they are when their model is the one configured here; otherwise the
    photos are embedded again after import (or by `reconcile` if the model is missing).
    """
    source = Source(path)
    try:
        plan = validate(source)
        report = ImportReport(known=plan.known)
        extra_tags = [collection.strip().lower()[:64]] if collection.strip() else []
        batch: list[dict] = []
        for record in _items(source, "images.item"):
            sha, _ = _check_record(record)  # again: it parses dates and decodes the vector
            if sha in plan.known_ids:
                continue
            batch.append(record)
            if len(batch) >= batch_size:
                _import_batch(source, plan, batch, extra_tags, report, on_record)
                batch = []
        if batch:
            _import_batch(source, plan, batch, extra_tags, report, on_record)
        return report
    finally:
        source.close()


def _import_batch(source: Source, plan: Plan, batch: list[dict], extra_tags: list[str], report: ImportReport,
                  on_record) -> None:
    written: dict[str, list[Path]] = {}
    ready: list[dict] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="import") as pool:
        for record, outcome in zip(batch, pool.map(lambda r: _place_files(source, r), batch)):
            if isinstance(outcome, str):
                report.failed.append((record["id"], outcome))
            else:
                written[record["id"]] = outcome[0]
                report.renditions_made += outcome[1]
                ready.append(record)
    try:
        with transaction.atomic():
            ids = _create_rows(ready, plan, extra_tags, report)
    except IntegrityError:
        # Another process added one of these photos meanwhile: the next run skips them.
        for record in ready:
            report.failed.append((record["id"], "added by another process during the import; run it again"))
        for paths in written.values():
            storage.delete_files(paths)
        return
    report.added += len(ids)
    if on_record:
        for _ in batch:
            on_record()
    from search.sync import embed_on_commit, sync_images

    try:
        sync = sync_images(ids, embed=embed_on_commit())
        report.to_embed += sync.left_pending
    except Exception:  # committed; the outbox rows let reconcile finish the index work
        log.exception("index sync after import failed; left for reconcile")


def _place_files(source: Source, record: dict) -> tuple[list[Path], int] | str:
    """Put a record's original and renditions in storage; return the new paths and renditions made, or an error."""
    sha, created = record["id"], []
    try:
        if not record["in_place"] and not (storage.media_root() / record["file"]).is_file():
            created.append(_extract(source, record["file"], sha=sha))
        missing = [kind for kind in storage.RENDITIONS
                   if not (storage.media_root() / storage.rendition_relpath(sha, kind)).is_file()]
        made = 0
        for kind in list(missing):
            relpath = storage.rendition_relpath(sha, kind)
            if relpath in source.members:
                created.append(_extract(source, relpath, sha=None))
                missing.remove(kind)
        if missing:
            created += _make_renditions(record, missing)
            made = 1
        return created, made
    except (ImportRefused, OSError, ValueError) as error:
        storage.delete_files(created)
        return f"{error}"
    except Exception as error:
        storage.delete_files(created)
        log.exception("importing %s failed", sha)
        return f"unexpected error: {type(error).__name__}: {error}"


def _extract(source: Source, relpath: str, *, sha: str | None) -> Path:
    """Copy one zip member into storage; an original must match its SHA-256, a rendition must be an image."""
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        with source.zip.open(source.members[relpath]) as member:
            while chunk := member.read(1 << 20):
                digest.update(chunk)
                yield chunk

    def check(written: Path) -> None:
        if sha is None:
            _check_rendition(written, relpath)
        elif digest.hexdigest() != sha:
            raise ImportRefused(f"{relpath} does not match its SHA-256: the bundle is damaged")

    return storage.write_atomic(relpath, chunks(), check=check)


def _check_rendition(path: Path, relpath: str) -> None:
    from PIL import Image as PILImage

    kind = relpath.rsplit(".", 2)[-2]
    expected = {"webp": "WEBP", "jpg": "JPEG"}[storage.RENDITIONS[kind][1]]
    try:
        with PILImage.open(path, formats=[expected]) as image:
            image.verify()
    except Exception:
        raise ImportRefused(f"{relpath} is not a {expected} image") from None


def _make_renditions(record: dict, kinds: list[str]) -> list[Path]:
    from gallery.decoding import DecodeError, NotAnImage, decode

    original = Path(record["file"]) if record["in_place"] else storage.media_root() / record["file"]
    try:
        photo = decode(original.read_bytes())
    except (DecodeError, NotAnImage) as error:
        raise ValueError(f"cannot make renditions: {error}") from None
    return [storage.write_atomic(storage.rendition_relpath(record["id"], kind), photo.renditions[kind])
            for kind in kinds]


def _create_rows(records: list[dict], plan: Plan, extra_tags: list[str], report: ImportReport) -> list[int]:
    images = []
    for record in records:
        embedding = record["embedding"]
        reuse = bool(embedding) and embedding["model"] == plan.model
        images.append(Image(
            sha256=record["id"], file=record["file"], in_place=record["in_place"],
            original_name=record["original_name"], source_path=record["source_path"],
            source_size=record["source_size"], source_mtime=record["source_mtime"], format=record["format"],
            width=record["width"], height=record["height"], byte_size=record["byte_size"],
            phash=record["phash"], pixel_hash=record["pixel_hash"], added_at=record["added_at"],
            trashed_at=record["trashed_at"],
            embedding_state=Image.Embedding.DONE if reuse else Image.Embedding.PENDING,
            embedding_model=plan.model if reuse else "",
        ))
    Image.objects.bulk_create(images)
    metadata = []
    for image, record in zip(images, records):
        meta = record["metadata"]
        metadata.append(Metadata(
            image=image, title=meta.get("title", ""), description=meta.get("description", ""),
            category=meta.get("category", ""), camera_make=meta.get("camera_make", ""),
            camera_model=meta.get("camera_model", ""), lens=meta.get("lens", ""), taken_at=meta.get("taken_at"),
            latitude=meta.get("latitude"), longitude=meta.get("longitude"), location=meta.get("location", ""),
            extra=meta.get("extra", {}),
        ))
    Metadata.objects.bulk_create(metadata)
    names = {name for record in records for name in record["metadata"].get("tags", [])} | set(extra_tags)
    tag_of = {tag.name: tag for tag in tags_named(names)}
    through = Metadata.tags.through
    through.objects.bulk_create([
        through(metadata_id=image.pk, tag_id=tag_of[name].pk)
        for image, record in zip(images, records)
        for name in sorted(set(record["metadata"].get("tags", [])) | set(extra_tags))
    ])
    vectors = {image.pk: stored_vectors.from_bytes(record["embedding"]["vector"])
               for image, record in zip(images, records) if image.embedding_state == Image.Embedding.DONE}
    stored_vectors.save(vectors)
    report.vectors_imported += len(vectors)
    # bulk_create sends no signals: the outbox rows are written here, in the same transaction.
    IndexOutbox.objects.bulk_create([IndexOutbox(image_id=image.pk) for image in images])
    return [image.pk for image in images]
