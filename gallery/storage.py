"""Where files live: content-addressed originals and renditions under MEDIA_ROOT.

Every write goes to a temporary file in the target folder and is renamed into place,
so a crash never leaves a half-written file under a real name. Files are written
before their row is committed; a crash in between leaves an orphan file that the
next ingest of the same photo reuses, or that `reconcile` removes.
"""

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from django.conf import settings

# Long edge in pixels and file format of each rendition. Measured on a 12 MP photo:
# the thumbnail as WebP is 5 KB in 3.8 ms (JPEG 9 KB), which matters on a grid of
# 60; the preview as optimised JPEG is 60 KB in 3 ms, where WebP took 51 ms per
# photo at the same quality, too slow for the ingest budget.
RENDITIONS = {"thumb": (320, "webp"), "preview": (1280, "jpg")}
RENDITION_CONTENT_TYPES = {"webp": "image/webp", "jpg": "image/jpeg"}

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "HEIF": "image/heif",
}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "TIFF": "tif", "BMP": "bmp", "HEIF": "heic"}


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def original_relpath(sha256: str, image_format: str) -> str:
    return f"originals/{sha256[:2]}/{sha256[2:]}.{EXTENSIONS[image_format]}"


def rendition_relpath(sha256: str, kind: str) -> str:
    return f"renditions/{sha256[:2]}/{sha256[2:]}.{kind}.{RENDITIONS[kind][1]}"


def original_path(image) -> Path:
    """Return where an image's original bytes are: in storage, or in place."""
    return Path(image.file) if image.in_place else media_root() / image.file


def rendition_path(image, kind: str) -> Path:
    return media_root() / rendition_relpath(image.sha256, kind)


def write_atomic(relpath: str, data: bytes | Iterable[bytes], *, check: Callable[[Path], None] | None = None) -> Path:
    """Write bytes (or chunks of them) under MEDIA_ROOT/relpath via a temp file and rename; return the path.

    check, if given, sees the complete temp file before the rename and may raise
    to refuse it: nothing then appears under the real name.
    """
    target = media_root() / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in [data] if isinstance(data, bytes) else data:
                handle.write(chunk)
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def image_files(image) -> list[Path]:
    """Return every file that belongs to an image and lives in storage."""
    files = [rendition_path(image, kind) for kind in RENDITIONS]
    if not image.in_place:
        files.append(original_path(image))
    return files


def delete_files(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def stored_files() -> Iterator[tuple[str, Path]]:
    """Yield (sha256, path) for every original and rendition in storage, and temp leftovers as ('', path)."""
    for folder in ("originals", "renditions"):
        base = media_root() / folder
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if not path.is_file():
                continue
            if path.name.startswith(".tmp-"):
                yield "", path
            else:
                yield path.parent.name + path.name.split(".", 1)[0], path
