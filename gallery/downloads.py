"""Several originals as one zip, streamed: nothing is built in memory or on disk first.

Originals are stored as they are (JPEG and HEIC do not compress), so the zip's size
is known before the first byte and the browser shows real progress.
"""

from collections.abc import Iterable
from pathlib import PurePosixPath

from django.conf import settings
from django.http import StreamingHttpResponse
from django.template.defaultfilters import filesizeformat
from zipstream import ZIP_STORED, ZipStream

from gallery import storage
from gallery.models import Image


class TooLarge(ValueError):
    """A selection whose originals exceed IMGSIM_DOWNLOAD_MAX_MB; the message says so in words."""


def unique_names(images: Iterable[Image]) -> list[tuple[Image, str]]:
    """Each photo with the name it gets in the zip: its original name, "name (2).jpg" when taken."""
    taken: set[str] = set()
    named = []
    for image in images:
        path = PurePosixPath(image.original_name.replace("/", "_").replace("\\", "_") or f"photo-{image.pk}")
        name, number = path.name, 1
        while name.lower() in taken:
            number += 1
            name = f"{path.stem} ({number}){path.suffix}"
        taken.add(name.lower())
        named.append((image, name))
    return named


def zip_response(images: list[Image], *, filename: str = "imgsim-photos.zip") -> StreamingHttpResponse:
    """A download of these photos' originals; raise TooLarge above the configured limit."""
    limit = settings.IMGSIM_DOWNLOAD_MAX_MB * 1024 * 1024
    total = sum(image.byte_size for image in images)
    if total > limit:
        raise TooLarge(
            f"These {len(images)} photos are {filesizeformat(total)}; one download holds at most "
            f"{filesizeformat(limit)} (IMGSIM_DOWNLOAD_MAX_MB). Select fewer photos and download them in parts."
        )
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    missing = []
    for image, name in unique_names(images):
        path = storage.original_path(image)
        if path.is_file():
            archive.add_path(str(path), arcname=name)
        else:
            missing.append(f"{name}: the original is missing ({image.file})")
    if missing:
        archive.add(("\n".join(missing) + "\n").encode(), arcname="MISSING.txt")
    response = StreamingHttpResponse(archive, content_type="application/zip")
    response["Content-Length"] = str(len(archive))
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
