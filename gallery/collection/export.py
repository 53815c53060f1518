"""Writing the library out: the document, one record at a time, optionally zipped with the files."""

import base64
import gzip
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import timezone

from gallery import storage
from gallery.collection.source import DOCUMENT_NAME, FORMAT, VERSION
from gallery.hooks import current_model_name
from gallery.models import Album, Image, ImageVector, Metadata
from gallery.serializers import iso, metadata_dict

CHUNK = 1000


def record(image: Image, tags: list[str], vector: bytes | None, *, bundle: bool, albums: list[str] = ()) -> dict:
    """One photo's export record (see the format in gallery.collection)."""
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
        "added_at": iso(image.added_at),
        "trashed_at": iso(image.trashed_at),
        "metadata": {**metadata_dict(image.metadata, tags=tags), "extra": image.metadata.extra},
        "embedding": (
            {"model": image.embedding_model, "vector": base64.b64encode(bytes(vector)).decode("ascii")}
            if vector is not None and image.embedding_state == Image.Embedding.DONE
            else None
        ),
        "albums": sorted(albums),
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
        albums: dict[int, list[str]] = {}
        for image_id, name in Album.photos.through.objects.filter(image_id__in=ids).values_list(
            "image_id", "album__name"
        ):
            albums.setdefault(image_id, []).append(name)
        for image in chunk:
            yield (
                image,
                record(
                    image,
                    sorted(tags.get(image.pk, [])),
                    vectors.get(image.pk),
                    bundle=bundle,
                    albums=albums.get(image.pk, []),
                ),
            )


def album_records() -> list[dict]:
    """Every album's own facts: a few per library, written after the photos."""
    return [
        {"name": name, "description": description, "cover": cover}
        for name, description, cover in Album.objects.values_list("name", "description", "cover__sha256")
    ]


def stored_dimension(model: str) -> int | None:
    """The length of the stored vectors of this model, if there are any."""
    sample = ImageVector.objects.filter(image__embedding_model=model).values_list("data", flat=True).first()
    return len(sample) // 4 if sample else None


def _header() -> dict:
    model = current_model_name()
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now().isoformat(),
        "model": model,
        "dimension": stored_dimension(model),
    }


def document_chunks(records: Iterator[dict] | None = None) -> Iterator[str]:
    """Yield the export document as text, one record at a time."""
    header = json.dumps(_header(), ensure_ascii=False)
    yield header[:-1] + ', "images": ['
    count = 0
    for item in records if records is not None else (item for _, item in iter_records()):
        yield ("\n" if count == 0 else ",\n") + json.dumps(item, ensure_ascii=False, sort_keys=True)
        count += 1
    albums = json.dumps(album_records(), ensure_ascii=False, sort_keys=True)
    yield f'\n], "albums": {albums}, "count": {count}}}\n'


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
    for _, item in records:
        report.count += 1
        if on_record:
            on_record()
        yield item


def _write_bundle(target: Path, report: ExportReport, on_record) -> None:
    """Write a zip with every original and rendition, and the document describing them last."""

    def records() -> Iterator[dict]:
        for image, item in iter_records(bundle=True):
            original = storage.original_path(image)
            if not original.is_file():
                report.missing.append(str(original))
                continue
            # Photos are compressed already: storing them costs nothing and reads fast.
            bundle.write(original, item["file"], compress_type=zipfile.ZIP_STORED)
            report.files += 1
            for kind in storage.RENDITIONS:
                rendition = storage.rendition_path(image, kind)
                if rendition.is_file():
                    bundle.write(
                        rendition, storage.rendition_relpath(image.sha256, kind), compress_type=zipfile.ZIP_STORED
                    )
                    report.files += 1
            report.count += 1
            if on_record:
                on_record()
            yield item

    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as bundle:
        # The document goes to a spooled temp file while the files stream into the zip,
        # so a photo whose original vanished is left out of both.
        with tempfile.TemporaryFile("w+b", dir=target.parent) as document:
            for chunk in document_chunks(records()):
                document.write(chunk.encode("utf-8"))
            document.seek(0)
            with bundle.open(DOCUMENT_NAME, "w", force_zip64=True) as member:
                shutil.copyfileobj(document, member, 1 << 20)


def gzipped_document() -> Iterator[bytes]:
    """Yield the export document gzip-compressed, as it is made (for a streamed download)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    for chunk in document_chunks():
        if data := compressor.compress(chunk.encode("utf-8")):
            yield data
    yield compressor.flush()
