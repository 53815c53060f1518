"""Reading an export: plain or gzip-compressed JSON, or a zip bundle, with defences against bombs and paths."""

import contextlib
import gzip
import io
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

from gallery import storage
from gallery.collection.schema import leaves_data_dir

FORMAT = "imgsim-collection"
VERSION = 2  # 2 added albums; version 1 documents (without them) are read too
READABLE_VERSIONS = (1, 2)
DOCUMENT_NAME = "collection.json"
# A real document compresses about 1.3x (vectors are noise to gzip); far more is a bomb.
MAX_EXPANSION = 64


class ImportRefused(Exception):
    """The input is not a collection this instance can import; nothing was changed."""


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
            if leaves_data_dir(name):
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


@contextlib.contextmanager
def reading(source: Source) -> Iterator:
    """Open the document for ijson; turn parse and read errors into one clear refusal."""
    import ijson

    with source.document() as stream:
        try:
            yield io.BufferedReader(stream) if isinstance(stream, io.RawIOBase) else stream
        except ijson.JSONError as error:
            raise ImportRefused(f"{source.path.name} is not valid JSON: {error}") from None
        except (EOFError, OSError, zipfile.BadZipFile) as error:
            raise ImportRefused(f"{source.path.name} is damaged: {error}") from None


def items(source: Source, prefix: str) -> Iterator:
    import ijson

    with reading(source) as reader:
        yield from ijson.items(reader, prefix, use_float=True)


def read_header(source: Source) -> dict:
    """Return the document's top-level scalars before "images" (where imgsim writes them), in one read."""
    import ijson

    header = {}
    with reading(source) as reader:
        for prefix, event, value in ijson.parse(reader, use_float=True):
            if prefix == "" and event == "map_key" and value == "images":
                break
            if prefix and "." not in prefix and event in ("string", "number", "boolean", "null"):
                header[prefix] = value
    return header
