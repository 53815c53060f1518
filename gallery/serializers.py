"""How a photo is written out, in one place: the JSON and Python APIs' results and the export records use it."""

import functools
from datetime import datetime

from django.urls import get_script_prefix, reverse

from gallery.models import Image, Metadata


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def tag_names(meta: Metadata) -> list[str]:
    """The photo's tags, sorted (from a prefetch when there is one)."""
    return sorted(tag.name for tag in meta.tags.all())


def metadata_dict(meta: Metadata, *, tags: list[str] | None = None) -> dict:
    """What people know about a photo: title, description, category, tags, camera, date, place."""
    return {
        "title": meta.title,
        "description": meta.description,
        "category": meta.category,
        "tags": tag_names(meta) if tags is None else tags,
        "camera_make": meta.camera_make,
        "camera_model": meta.camera_model,
        "lens": meta.lens,
        "taken_at": iso(meta.taken_at),
        "latitude": meta.latitude,
        "longitude": meta.longitude,
        "location": meta.location,
    }


_PLACEHOLDER = 987654321987


@functools.cache
def _url_pattern(name: str, kind: str | None, prefix: str) -> str:
    args = [_PLACEHOLDER] if kind is None else [_PLACEHOLDER, kind]
    return reverse(name, args=args).replace(str(_PLACEHOLDER), "{}")


def media_url(name: str, pk: int, kind: str | None = None) -> str:
    """reverse() for the media URLs, worked out once per name: a page of results needs two per photo,
    and reverse() costs more than the rest of the photo's record."""
    return _url_pattern(name, kind, get_script_prefix()).format(int(pk))


def image_dict(image: Image, *, similarity: float | None = None) -> dict:
    """One photo as the JSON API and the Python API give it: facts, metadata, file URLs (and similarity)."""
    result = {
        "id": image.pk,
        "filename": image.original_name,
        "path": media_url("gallery:original", image.pk),
        "thumbnail": media_url("gallery:rendition", image.pk, "thumb"),
        "source_path": image.source_path,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "byte_size": image.byte_size,
        "sha256": image.sha256,
        "metadata": metadata_dict(image.metadata),
    }
    if similarity is not None:
        result["similarity"] = float(similarity)
    return result
