"""Rows made directly, for tests of pages, permissions and services that need no real files."""

import hashlib
import itertools

from django.utils import timezone

from gallery.models import Image, Metadata

_numbers = itertools.count(1)


def make_photo(
    *,
    name: str | None = None,
    width: int = 640,
    height: int = 480,
    byte_size: int = 50_000,
    trashed: bool = False,
    **metadata,
) -> Image:
    """An Image with its Metadata row; nothing on disk (media views answer 404 "file missing")."""
    number = next(_numbers)
    image = Image.objects.create(
        sha256=hashlib.sha256(f"photo-{number}".encode()).hexdigest(),
        file=f"originals/x/{number}.jpg",
        original_name=name or f"photo_{number}.jpg",
        format="JPEG",
        width=width,
        height=height,
        byte_size=byte_size,
        trashed_at=timezone.now() if trashed else None,
    )
    Metadata.objects.create(image=image, **metadata)
    return image


def make_photos(count: int, **options) -> list[Image]:
    return [make_photo(**options) for _ in range(count)]
