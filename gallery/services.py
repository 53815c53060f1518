"""Writes to the library: creating photos, editing metadata and tags, the trash."""

import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gallery import storage, words
from gallery import vectors as stored_vectors
from gallery.models import Album, Favourite, Image, Metadata, Tag
from gallery.signals import images_changed


def image_create(*, facts: dict, metadata: dict, tags: Iterable[str] = (), vector=None, model_name: str = "") -> Image:
    """Save a new photo with its Metadata row (every Image has exactly one), its tags and its vector, if any.

    Call it inside the caller's transaction: the rows appear together or not at all.
    """
    image = Image(**facts)
    if vector is not None:
        image.embedding_model, image.embedding_state = model_name, Image.Embedding.DONE
    image.save()
    if vector is not None:
        stored_vectors.save({image.pk: vector})
    tag_rows = tags_named(tags)  # no query for no tags
    meta = Metadata(image=image, **metadata)
    meta.search_text = words.text_of(image, [tag.name for tag in tag_rows])
    meta.save(force_insert=True)
    if tag_rows:
        meta.tags.set(tag_rows)
    return image


# "copy of x.jpg", "x - Copy.jpg", "x (1).jpg", "Kopie von x.jpg": names a file manager gives duplicates.
_COPY_LIKE = re.compile(r"\b(copy|kopie|copie|copia)\b|\(\d+\)$", re.IGNORECASE)


def path_preference(path: str) -> tuple:
    """Sort key of the paths of one photo: the least copy-like, then the shortest, comes first."""
    stem = Path(path).stem
    return (bool(_COPY_LIKE.search(stem)), len(Path(path).parts), len(path), path)


def image_copies_found(copies: Iterable[tuple[str, str]]) -> int:
    """Record where an in-place photo's bytes were found again; keep the best path as its own.

    copies are (sha256, path) pairs. The photo is served from the least copy-like,
    shortest path that exists; the others are listed on its page ("also at").
    Returns how many photos changed.
    """
    by_sha: dict[str, set[str]] = {}
    for sha256, path in copies:
        by_sha.setdefault(sha256, set()).add(path)
    changed = 0
    with transaction.atomic():
        for image in Image.objects.filter(sha256__in=list(by_sha), in_place=True).select_for_update():
            paths = {image.source_path, *image.other_paths, *by_sha[image.sha256]} - {""}
            existing = [path for path in paths if Path(path).is_file()]
            best = min(existing or [image.source_path], key=path_preference)
            others = sorted(paths - {best}, key=path_preference)
            found_again = image.missing_since is not None and bool(existing)
            if (best, others) == (image.source_path, image.other_paths) and not found_again:
                continue
            if found_again:
                image.missing_since = None
            if best != image.source_path:
                stat = Path(best).stat()
                image.source_path = image.file = best
                image.original_name = Path(best).name[:255]
                image.source_size, image.source_mtime = stat.st_size, stat.st_mtime
            image.other_paths = others
            image.save(
                update_fields=[
                    "source_path",
                    "file",
                    "original_name",
                    "source_size",
                    "source_mtime",
                    "other_paths",
                    "missing_since",
                ]
            )
            changed += 1
    return changed


def sources_check(*, under: Path | None = None) -> tuple[list[Image], int]:
    """Mark in-place photos whose file is gone (hidden from search), and unmark those whose file is back.

    under: only photos whose file is in this folder (an in-place ingest of it).
    Returns the photos missing now and how many came back.
    """
    photos = Image.objects.live().filter(in_place=True)
    if under is not None:
        photos = photos.filter(file__startswith=str(under).rstrip("/") + "/")
    gone, back = [], []
    for pk, file, missing_since in photos.values_list("pk", "file", "missing_since").iterator(chunk_size=2000):
        exists = Path(file).is_file()
        if not exists and missing_since is None:
            gone.append(pk)
        elif exists and missing_since is not None:
            back.append(pk)
    with transaction.atomic():
        Image.objects.filter(pk__in=gone).update(missing_since=timezone.now())
        Image.objects.filter(pk__in=back).update(missing_since=None)
        _mirrored_change(gone + back)  # out of the index, or back in
    return list(photos.filter(missing_since__isnull=False).order_by("file")), len(back)


def tags_named(names: Iterable[str]) -> list[Tag]:
    """Return Tag rows for these names (lowercased, trimmed, at most 64 characters), creating the missing ones."""
    names = sorted({name.strip().lower()[:64] for name in names if name.strip()})
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    for name in names:
        if name not in existing:
            existing[name], _ = Tag.objects.get_or_create(name=name)
    return [existing[name] for name in names]


def _set_trashed(images: list[Image], trashed_at) -> int:
    """Set trashed_at on those of these photos whose state (in the database) differs; return how many."""
    wanted_live = trashed_at is None
    with transaction.atomic():
        rows = Image.objects.filter(pk__in=[image.pk for image in images], trashed_at__isnull=not wanted_live)
        changed = set(rows.values_list("pk", flat=True))
        Image.objects.filter(pk__in=changed).update(trashed_at=trashed_at)
        _mirrored_change(sorted(changed))  # search drops the vectors, or puts them back
    for image in images:
        if image.pk in changed:
            image.trashed_at = trashed_at
    return len(changed)


def image_trash(*, images: list[Image]) -> int:
    """Move photos to the trash: out of gallery and search, restorable until purged; return how many moved."""
    return _set_trashed(images, timezone.now())


def image_restore(*, images: list[Image]) -> int:
    """Bring trashed photos back to the library; return how many came back."""
    return _set_trashed(images, None)


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


METADATA_TEXT_FIELDS = ("title", "description", "category", "camera_make", "camera_model", "lens", "location")
METADATA_OTHER_FIELDS = ("taken_at", "latitude", "longitude")  # validated by gallery.forms.MetadataForm


def metadata_update(*, image: Image, fields: dict, tags: list[str] | None = None, extra: dict | None = None) -> None:
    """Change a photo's metadata fields (text cut to its column's length), tags and free-form extra.

    Values of the other fields (date taken, GPS) are set as given: callers validate
    them with gallery.forms.MetadataForm.
    """
    meta = image.metadata
    with transaction.atomic():
        for name, value in fields.items():
            if name in METADATA_TEXT_FIELDS:
                value = str(value)[: meta._meta.get_field(name).max_length or None]
            elif name not in METADATA_OTHER_FIELDS:
                raise ValueError(f"{name} is not an editable metadata field")
            setattr(meta, name, value)
        if extra:
            meta.extra = {**meta.extra, **extra}
        meta.save()
        if tags is not None:
            meta.tags.set(tags_named(tags))


MERGE_LABELS = {"gps": "GPS", "taken_at": "date taken"}


def metadata_merge(*, keeper: Image, others: list[Image]) -> dict:
    """Fill what the keeper lacks from the others: tags (union), text fields, GPS and date taken.

    Return what was filled, {field: value}, JSON-ready, for metadata_unmerge to take back.
    """
    meta = keeper.metadata
    merged: dict = {}
    for name in ("category", "description", "location", "title"):
        if not getattr(meta, name):
            value = next((getattr(o.metadata, name) for o in others if getattr(o.metadata, name)), "")
            if value:
                setattr(meta, name, value)
                merged[name] = value
    if meta.latitude is None:
        donor = next((o.metadata for o in others if o.metadata.latitude is not None), None)
        if donor:
            meta.latitude, meta.longitude = donor.latitude, donor.longitude
            merged["gps"] = [donor.latitude, donor.longitude]
    if meta.taken_at is None:
        donor = next((o.metadata for o in others if o.metadata.taken_at), None)
        if donor:
            meta.taken_at = donor.taken_at
            merged["taken_at"] = donor.taken_at.isoformat()
    meta.save()
    tags = {tag for other in others for tag in other.metadata.tags.all()} - set(meta.tags.all())
    if tags:
        meta.tags.add(*tags)
        merged["tags"] = sorted(tag.name for tag in tags)
    return merged


def metadata_unmerge(*, keeper: Image, merged: dict) -> None:
    """Take back what metadata_merge filled in, where nobody has changed it since."""
    from datetime import datetime

    meta = keeper.metadata
    for name in ("category", "description", "location", "title"):
        if name in merged and getattr(meta, name) == merged[name]:
            setattr(meta, name, "")
    if "gps" in merged and [meta.latitude, meta.longitude] == merged["gps"]:
        meta.latitude = meta.longitude = None
    if "taken_at" in merged and meta.taken_at == datetime.fromisoformat(merged["taken_at"]):
        meta.taken_at = None
    meta.save()
    if merged.get("tags"):
        meta.tags.remove(*meta.tags.filter(name__in=merged["tags"]))


# --- albums ---------------------------------------------------------------------------
# Search mirrors each photo's album names and who starred it (the `album` and
# `favourite_of` filters), so every change to an album's name or members, and every
# star, names its photos in images_changed, inside the transaction.


def _mirrored_change(image_ids) -> None:
    image_ids = list(image_ids)
    if image_ids:
        images_changed.send(sender=Image, image_ids=image_ids)


def album_create(*, name: str, description: str = "", user=None) -> Album:
    return Album.objects.create(name=name.strip(), description=description, created_by=user)


def album_update(*, album: Album, name: str, description: str, cover: Image | None = None) -> None:
    """Rename or describe an album, or pick its cover (one of its photos)."""
    renamed = name.strip() != album.name
    with transaction.atomic():
        album.name, album.description = name.strip(), description
        if cover is not None:
            album.cover = cover
        album.save()
        if renamed:
            _mirrored_change(album.photos.values_list("pk", flat=True))


def album_delete(*, album: Album) -> int:
    """Delete an album; its photos stay in the library. Return how many photos it held."""
    with transaction.atomic():
        members = list(album.photos.values_list("pk", flat=True))
        album.delete()
        _mirrored_change(members)
    return len(members)


def album_add(*, album: Album, images: Iterable[Image]) -> int:
    """Put photos in an album (those already in it stay once); return how many were added."""
    through = Album.photos.through
    with transaction.atomic():
        present = set(album.photos.values_list("pk", flat=True))
        new = sorted({image.pk for image in images} - present)
        through.objects.bulk_create([through(album_id=album.pk, image_id=pk) for pk in new], batch_size=2000)
        if album.cover_id is None and new:
            album.cover_id = new[0]
            album.save(update_fields=["cover"])
        _mirrored_change(new)
    return len(new)


def album_remove(*, album: Album, images: Iterable[Image]) -> int:
    """Take photos out of an album (they stay in the library); return how many were removed."""
    through = Album.photos.through
    ids = {image.pk for image in images}
    with transaction.atomic():
        removed = list(through.objects.filter(album=album, image_id__in=ids).values_list("image_id", flat=True))
        through.objects.filter(album=album, image_id__in=removed).delete()
        if album.cover_id in removed:
            album.cover_id = album.photos.order_by("pk").values_list("pk", flat=True).first()
            album.save(update_fields=["cover"])
        _mirrored_change(removed)
    return len(removed)


# --- favourites -----------------------------------------------------------------------


def favourite_set(*, user, images: Iterable[Image], on: bool) -> int:
    """Star (on) or unstar photos for one person; return how many changed. Search mirrors who starred what."""
    ids = {image.pk for image in images}
    with transaction.atomic():
        starred = set(Favourite.objects.filter(user=user, image_id__in=ids).values_list("image_id", flat=True))
        changing = sorted(ids - starred) if on else sorted(starred)
        if on:
            Favourite.objects.bulk_create([Favourite(user=user, image_id=pk) for pk in changing], ignore_conflicts=True)
        else:
            Favourite.objects.filter(user=user, image_id__in=changing).delete()
        _mirrored_change(changing)
    return len(changing)


# --- bulk metadata --------------------------------------------------------------------
# One transaction and one images_changed per action, whatever the number of photos:
# search syncs them after commit in one batch.


def tags_add(*, images: Iterable[Image], names: Iterable[str]) -> int:
    """Give every photo these tags; return how many photos gained at least one."""
    through = Metadata.tags.through
    ids = sorted({image.pk for image in images})
    with transaction.atomic():
        tags = tags_named(names)
        have = set(through.objects.filter(metadata_id__in=ids, tag__in=tags).values_list("metadata_id", "tag_id"))
        new = [through(metadata_id=pk, tag_id=tag.pk) for pk in ids for tag in tags if (pk, tag.pk) not in have]
        through.objects.bulk_create(new, batch_size=5000)
        changed = sorted({row.metadata_id for row in new})
        _mirrored_change(changed)
    return len(changed)


def tags_remove(*, images: Iterable[Image], names: Iterable[str]) -> int:
    """Take these tags off every photo (the tags themselves stay); return how many photos lost one."""
    through = Metadata.tags.through
    ids = sorted({image.pk for image in images})
    wanted = {name.strip().lower() for name in names if name.strip()}
    with transaction.atomic():
        rows = through.objects.filter(metadata_id__in=ids, tag__name__in=wanted)
        changed = sorted(set(rows.values_list("metadata_id", flat=True)))
        through.objects.filter(metadata_id__in=changed, tag__name__in=wanted).delete()
        _mirrored_change(changed)
    return len(changed)


def category_set(*, images: Iterable[Image], category: str) -> int:
    """Set one category on every photo ("" clears it); return how many changed."""
    category = category.strip()[: Metadata._meta.get_field("category").max_length]
    ids = sorted({image.pk for image in images})
    with transaction.atomic():
        rows = Metadata.objects.filter(image_id__in=ids).exclude(category=category)
        changed = sorted(rows.values_list("image_id", flat=True))
        Metadata.objects.filter(image_id__in=changed).update(category=category)
        _mirrored_change(changed)
    return len(changed)
