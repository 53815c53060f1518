"""How a photo is written out, in one place: the JSON and Python APIs' results and the export records use it."""

from datetime import datetime

from gallery.models import Image, Metadata
from gallery.urls_for_photos import photo_url


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


def image_dict(image: Image, *, similarity: float | None = None, tags: list[str] | None = None) -> dict:
    """One photo as the JSON API and the Python API give it: facts, metadata, file URLs (and similarity).

    tags: its tag names when the caller read them already (gallery.selectors.tags_by_photo).
    """
    result = {
        "id": image.pk,
        "filename": image.original_name,
        "path": photo_url("gallery:original", image.pk),
        "thumbnail": photo_url("gallery:rendition", image.pk, "thumb"),
        "source_path": image.source_path,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "byte_size": image.byte_size,
        "sha256": image.sha256,
        "metadata": metadata_dict(image.metadata, tags=tags),
    }
    if similarity is not None:
        result["similarity"] = float(similarity)
    return result
