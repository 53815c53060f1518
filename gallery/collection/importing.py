"""Reading a library back: check the whole input first, then add the photos the library lacks, in batches."""

import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from django.db import IntegrityError, transaction
from pydantic import ValidationError as PydanticValidationError

from gallery import storage
from gallery import vectors as stored_vectors
from gallery.collection.digests import Digests
from gallery.collection.export import stored_dimension
from gallery.collection.schema import AlbumRecord, Record, parse_record
from gallery.collection.source import (
    DOCUMENT_NAME,
    FORMAT,
    READABLE_VERSIONS,
    ImportRefused,
    Source,
    items,
    read_header,
)
from gallery.hooks import current_model_name, get_vectorizer
from gallery.models import Album, Image, Metadata
from gallery.services import tags_named
from gallery.signals import images_changed

log = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 5


class Problems:
    """What is wrong with an input, a few of them in words and how many in all."""

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
            raise ImportRefused(
                f"{name} cannot be imported ({self.count} problem(s)); nothing was changed:\n  "
                + "\n  ".join(self.lines)
                + more
            )


@dataclass
class Plan:
    """What validation found: how many records, which are new, and the model's dimension."""

    source: Source
    model: str
    records: int = 0
    new: int = 0
    known: int = 0
    known_ids: Digests = field(default_factory=Digests)  # the library's photos when validation read them
    albums: list = field(default_factory=list)  # AlbumRecord: the albums' own facts


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
            self.value = stored_dimension(self.model)
            if self.value is None and (vectorizer := get_vectorizer()) is not None:
                try:
                    self.value = vectorizer.dimension
                except Exception:  # no model here: vectors of that model are still checked against each other
                    self.value = None
        return self.value


def records(source: Source) -> Iterator[tuple[int, str, Record | None, list[str]]]:
    """Yield (number, id, record or None, problems) for every record of the document."""
    for number, raw in enumerate(items(source, "images.item"), start=1):
        yield (number, *parse_record(raw))


def validate(source: Source) -> Plan:
    """Read the whole input once and raise ImportRefused listing the problems found."""
    name = source.path.name
    header = read_header(source)
    if header.get("format") != FORMAT:
        raise ImportRefused(f'{name} is not an imgsim collection (its "format" is not {FORMAT!r})')
    version = header.get("version")
    if version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise ImportRefused(f"{name} is format version {version!r}; this imgsim reads versions {readable}")
    plan = Plan(source, model=current_model_name())
    problems = Problems()
    # Held for every record until the end, so kept small: each SHA-256 as its 32 bytes (Digests),
    # and the files a document should bring only for a zip, which can bring others.
    seen = Digests()
    expected_files: set[str] = set()
    dimensions: dict[str, int] = {}
    if isinstance(header.get("model"), str) and isinstance(header.get("dimension"), int):
        dimensions[header["model"]] = header["dimension"]
    plan.known_ids = Digests(Image.objects.values_list("sha256", flat=True).iterator(chunk_size=10_000))
    current_dimension = CurrentDimension(plan.model)
    for number, sha, record, record_problems in records(source):
        where = f"image {number} ({sha[:12]})"
        for problem in record_problems:
            problems.add(where, problem)
        if record is None:
            continue
        digest = bytes.fromhex(sha)
        if digest in seen:
            problems.add(where, "duplicate id: this photo appears twice")
            continue
        seen.add(digest)
        plan.records += 1
        if record.embedding:
            dimension = record.embedding.dimension
            expected = dimensions.setdefault(record.embedding.model, dimension)
            if record.embedding.model == plan.model and current_dimension() not in (None, dimension):
                problems.add(
                    where, f"embedding dimension {dimension} does not match {plan.model} ({current_dimension()})"
                )
            elif dimension != expected:
                problems.add(where, f"embedding dimension {dimension} differs from {expected} of the same model")
        if not record.in_place and source.kind == "zip":
            expected_files.add(record.file)
            expected_files.update(storage.rendition_relpath(sha, kind) for kind in storage.RENDITIONS)
        if digest in plan.known_ids:
            plan.known += 1
            continue
        plan.new += 1
        if problem := _original_problem(source, record):
            problems.add(where, problem)
    for number, raw in enumerate(items(source, "albums.item"), start=1):
        try:
            plan.albums.append(AlbumRecord.model_validate(raw))
        except PydanticValidationError as error:
            for problem in error.errors(include_url=False):
                problems.add(f"album {number}", f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}")
    if source.kind == "zip":
        for member in source.members:
            if member != DOCUMENT_NAME and member not in expected_files:
                problems.add(f"zip entry {member[:200]!r}", "is not a file of any photo in the document")
    problems.raise_if_any(name)
    return plan


def _original_problem(source: Source, record: Record) -> str:
    """Say what is wrong with a new photo's original: missing, or not the bytes its SHA-256 names."""
    digest = hashlib.sha256()
    try:
        if record.in_place:
            opened = open(record.file, "rb")
        elif record.file in source.members:
            opened = source.zip.open(source.members[record.file])
        elif (storage.media_root() / record.file).is_file():
            opened = open(storage.media_root() / record.file, "rb")
        else:
            return f"original not found: {record.file[:200]}"
        with opened as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return f"original not found: {record.file[:200]}"
    if digest.hexdigest() != record.id:
        return f"original {record.file[:200]} does not match its SHA-256: the file was changed or damaged"
    return ""


@dataclass
class ImportReport:
    added: int = 0
    known: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    renditions_made: int = 0
    vectors_imported: int = 0
    to_embed: int = 0


def import_collection(
    path, *, collection: str = "", on_record: Callable[[], None] | None = None, batch_size: int = 500
) -> ImportReport:
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
        batch: list[Record] = []
        for _, sha, record, _ in records(source):
            if bytes.fromhex(sha) in plan.known_ids:
                continue
            batch.append(record)
            if len(batch) >= batch_size:
                _import_batch(source, plan, batch, extra_tags, report, on_record)
                batch = []
        if batch:
            _import_batch(source, plan, batch, extra_tags, report, on_record)
        _album_facts(plan.albums)
        return report
    finally:
        source.close()


def _import_batch(
    source: Source, plan: Plan, batch: list[Record], extra_tags: list[str], report: ImportReport, on_record
) -> None:
    written: dict[str, list[Path]] = {}
    ready: list[Record] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="import") as pool:
        for record, outcome in zip(batch, pool.map(lambda r: _place_files(source, r), batch)):
            if isinstance(outcome, str):
                report.failed.append((record.id, outcome))
            else:
                written[record.id] = outcome[0]
                report.renditions_made += outcome[1]
                ready.append(record)
    try:
        # The index follows once this commits (search listens to images_changed).
        with transaction.atomic():
            ids = _create_rows(ready, plan, extra_tags, report)
            images_changed.send(sender=Image, image_ids=ids)
    except IntegrityError:
        # Another process added one of these photos meanwhile: the next run skips them.
        for record in ready:
            report.failed.append((record.id, "added by another process during the import; run it again"))
        for paths in written.values():
            storage.delete_files(paths)
        return
    report.added += len(ids)
    report.to_embed += Image.objects.waiting_for_embedding().filter(pk__in=ids).count()
    if on_record:
        for _ in batch:
            on_record()


def _place_files(source: Source, record: Record) -> tuple[list[Path], int] | str:
    """Put a record's original and renditions in storage; return the new paths and renditions made, or an error."""
    sha, created = record.id, []
    try:
        if not record.in_place and not (storage.media_root() / record.file).is_file():
            created.append(_extract(source, record.file, sha=sha))
        missing = [
            kind
            for kind in storage.RENDITIONS
            if not (storage.media_root() / storage.rendition_relpath(sha, kind)).is_file()
        ]
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


def _make_renditions(record: Record, kinds: list[str]) -> list[Path]:
    from gallery.decoding import DecodeError, NotAnImage, decode

    original = Path(record.file) if record.in_place else storage.media_root() / record.file
    try:
        photo = decode(original.read_bytes())
    except (DecodeError, NotAnImage) as error:
        raise ValueError(f"cannot make renditions: {error}") from None
    return [storage.write_atomic(storage.rendition_relpath(record.id, kind), photo.renditions[kind]) for kind in kinds]


def _create_rows(records: list[Record], plan: Plan, extra_tags: list[str], report: ImportReport) -> list[int]:
    images = []
    for record in records:
        reuse = record.embedding is not None and record.embedding.model == plan.model
        images.append(
            Image(
                sha256=record.id,
                file=record.file,
                in_place=record.in_place,
                original_name=record.original_name,
                source_path=record.source_path,
                source_size=record.source_size,
                source_mtime=record.source_mtime,
                format=record.format,
                width=record.width,
                height=record.height,
                byte_size=record.byte_size,
                phash=record.phash,
                pixel_hash=record.pixel_hash,
                added_at=record.added_at,
                trashed_at=record.trashed_at,
                embedding_state=Image.Embedding.DONE if reuse else Image.Embedding.PENDING,
                embedding_model=plan.model if reuse else "",
            )
        )
    Image.objects.bulk_create(images)
    Metadata.objects.bulk_create(
        [
            Metadata(image=image, **record.metadata.model_dump(exclude={"tags"}))
            for image, record in zip(images, records)
        ]
    )
    names = {name for record in records for name in record.metadata.tags} | set(extra_tags)
    tag_of = {tag.name: tag for tag in tags_named(names)}
    through = Metadata.tags.through
    through.objects.bulk_create(
        [
            through(metadata_id=image.pk, tag_id=tag_of[name].pk)
            for image, record in zip(images, records)
            for name in sorted(set(record.metadata.tags) | set(extra_tags))
        ]
    )
    _memberships(images, records)
    vectors = {
        image.pk: stored_vectors.from_bytes(record.embedding.vector)
        for image, record in zip(images, records)
        if image.embedding_state == Image.Embedding.DONE
    }
    stored_vectors.save(vectors)
    report.vectors_imported += len(vectors)
    return [image.pk for image in images]


def _albums_named(names: set[str]) -> dict[str, Album]:
    """Albums by name, matched ignoring case as the library does, created when missing."""
    found = {}
    for name in sorted(names):
        found[name] = Album.objects.filter(name__iexact=name).first() or Album.objects.create(name=name)
    return found


def _memberships(images: list[Image], records: list[Record]) -> None:
    album_of = _albums_named({name for record in records for name in record.albums})
    through = Album.photos.through
    through.objects.bulk_create(
        [
            through(album_id=album_of[name].pk, image_id=image.pk)
            for image, record in zip(images, records)
            for name in set(record.albums)
        ],
        ignore_conflicts=True,
    )


def _album_facts(albums: list[AlbumRecord]) -> None:
    """Give the albums their descriptions and covers where the library has none yet."""
    with transaction.atomic():
        album_of = _albums_named({a.name for a in albums})
        for facts in albums:
            album = album_of[facts.name]
            if facts.description and not album.description:
                album.description = facts.description
            if facts.cover and album.cover_id is None:
                album.cover = Image.objects.filter(sha256=facts.cover).first()
            album.save()
