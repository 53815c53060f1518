"""Writes to the library that more than one page or command needs."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gallery import storage
from gallery.models import Image


def image_trash(*, images: list[Image]) -> None:
    """Move photos to the trash: out of gallery and search, restorable until purged."""
    now = timezone.now()
    with transaction.atomic():
        for image in images:
            image.trashed_at = now
            image.save(update_fields=["trashed_at"])  # post_save removes the vector


def image_restore(*, images: list[Image]) -> None:
    with transaction.atomic():
        for image in images:
            image.trashed_at = None
            image.save(update_fields=["trashed_at"])  # post_save puts the vector back


def image_delete(*, images: list[Image]) -> int:
    """Delete photos for good: rows now, their files once the deletion has committed."""
    files = [path for image in images for path in storage.image_files(image)]
    with transaction.atomic():
        for image in images:
            image.delete()  # post_delete removes the vector
        # A rollback keeps the files; a crash after commit leaves orphans that reconcile removes.
        transaction.on_commit(lambda: storage.delete_files(files))
    return len(images)


def trash_purge(*, older_than_days: int | None = None) -> int:
    """Delete trashed photos trashed more than this many days ago (default IMGSIM_TRASH_DAYS)."""
    days = settings.IMGSIM_TRASH_DAYS if older_than_days is None else older_than_days
    expired = list(Image.objects.filter(trashed_at__lte=timezone.now() - timedelta(days=days)))
    return image_delete(images=expired) if expired else 0


def metadata_merge(*, keeper: Image, others: list[Image]) -> list[str]:
    """Fill what the keeper lacks from the others: tags (union), category, description, location."""
    meta = keeper.metadata
    merged = []
    for field in ("category", "description", "location", "title"):
        if not getattr(meta, field):
            value = next((getattr(o.metadata, field) for o in others if getattr(o.metadata, field)), "")
            if value:
                setattr(meta, field, value)
                merged.append(field)
    if meta.latitude is None:
        donor = next((o.metadata for o in others if o.metadata.latitude is not None), None)
        if donor:
            meta.latitude, meta.longitude = donor.latitude, donor.longitude
            merged.append("GPS")
    if meta.taken_at is None:
        donor = next((o.metadata for o in others if o.metadata.taken_at), None)
        if donor:
            meta.taken_at = donor.taken_at
            merged.append("date taken")
    meta.save()
    tags = {tag for other in others for tag in other.metadata.tags.all()} - set(meta.tags.all())
    if tags:
        meta.tags.add(*tags)
        merged.append("tags")
    return merged
