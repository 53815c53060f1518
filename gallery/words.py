"""The words the team wrote about its photos, searchable by the database's own full-text search.

Each photo's Metadata.search_text is one text made of its title, description, tags,
category, location, camera, lens and file name; `refresh` rewrites it inside the
same transaction as the change (receivers on the model signals and on
images_changed, as gallery.versions has). The database indexes it:

- SQLite: an FTS5 table `gallery_words` over gallery_metadata.search_text (external
  content), kept in step by triggers (migration 0007), ranked by bm25;
- PostgreSQL: a GIN index on to_tsvector('simple', search_text), ranked by ts_rank.

Words match whole, without regard to case or accents (the text is stored folded,
`fold`); a query's words must all
appear (in any field), a "quoted phrase" in that order. search.hybrid fuses this
ranking with CLIP's.
"""

import re
import unicodedata
from collections.abc import Iterable

from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from gallery.models import Image, Metadata, Tag
from gallery.signals import images_changed

# Field, its label in "matched: ...", and how to read it from a photo.
LABELS = {
    "title": "title",
    "description": "description",
    "tags": "tags",
    "category": "category",
    "location": "location",
    "camera": "camera",
    "filename": "file name",
}
_WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Lowercase without accents ("Zürich" -> "zurich"): stored and queried so on both databases alike."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fields_of(image: Image, tags: Iterable[str]) -> dict[str, str]:
    meta = image.metadata
    return {
        "title": meta.title,
        "description": meta.description,
        "tags": " ".join(tags),
        "category": meta.category,
        "location": meta.location,
        "camera": " ".join(part for part in (meta.camera_make, meta.camera_model, meta.lens) if part),
        "filename": re.sub(r"[._-]+", " ", image.original_name),
    }


def text_of(image: Image, tags: Iterable[str]) -> str:
    """A photo's searchable text, as Metadata.search_text holds it (tags: their names, sorted)."""
    return fold("\n".join(value for value in fields_of(image, tags).values() if value))


def refresh(image_ids: Iterable[int]) -> None:
    """Rewrite the searchable text of these photos (call inside the transaction that changed them)."""
    ids = sorted(set(image_ids))
    through = Metadata.tags.through
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        tags: dict[int, list[str]] = {}
        for image_id, name in through.objects.filter(metadata_id__in=chunk).values_list("metadata_id", "tag__name"):
            tags.setdefault(image_id, []).append(name)
        rows = []
        for image in Image.objects.filter(pk__in=chunk).select_related("metadata"):
            text = text_of(image, sorted(tags.get(image.pk, [])))
            if text != image.metadata.search_text:
                image.metadata.search_text = text
                rows.append(image.metadata)
        Metadata.objects.bulk_update(rows, ["search_text"], batch_size=1000)


def words(query: str) -> list[str]:
    return _WORD.findall(fold(query))


def matching_ids(query: str, *, phrase: bool = False, limit: int = 200) -> list[int]:
    """Photo ids whose words contain all of the query's (or the phrase), best match first."""
    terms = words(query)
    if not terms:
        return []
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = SearchVector("search_text", config="simple")
        search = SearchQuery(" ".join(terms), config="simple", search_type="phrase" if phrase else "plain")
        rows = (
            Metadata.objects.annotate(document=vector, rank=SearchRank(vector, search))
            .filter(document=search, image__trashed_at__isnull=True)
            .order_by("-rank", "-image_id")
            .values_list("image_id", flat=True)[:limit]
        )
        return list(rows)
    match = '"' + " ".join(terms) + '"' if phrase else " ".join(f'"{term}"' for term in terms)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w.rowid FROM gallery_words w JOIN gallery_image i ON i.id = w.rowid "
            "WHERE gallery_words MATCH %s AND i.trashed_at IS NULL ORDER BY bm25(gallery_words), w.rowid DESC LIMIT %s",
            [match, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def matched_fields(image: Image, tags: Iterable[str], query: str) -> list[str]:
    """The fields of a photo in which the query's words appear, for the "matched: title" hint."""
    terms = set(words(query))
    found = []
    for field, value in fields_of(image, tags).items():
        present = set(words(value))
        if terms and terms & present:
            found.append(LABELS[field])
    return found


# --- keeping search_text in step ------------------------------------------------------


def _metadata_saved(sender, instance: Metadata, raw: bool = False, created: bool = False, **kwargs) -> None:
    # A new row that comes with its text (services.image_create writes it) is in step already;
    # refreshing it read the photo and its tags back, half of what storing an ingested photo cost.
    if not raw and not (created and instance.search_text):  # refresh's bulk_update sends no signal
        refresh([instance.image_id])


def _image_saved(sender, instance: Image, raw: bool = False, created: bool = False, **kwargs) -> None:
    if not raw and not created:  # a new photo's Metadata row comes next and refreshes it
        refresh([instance.pk])


def _tags_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if action in {"post_add", "post_remove", "post_clear"}:
        refresh([instance.image_id] if not reverse else pk_set or [])


def _tag_saved(sender, instance: Tag, created: bool = False, **kwargs) -> None:
    if not created:  # a renamed tag
        refresh(instance.photos.values_list("image_id", flat=True))


def _bulk_changed(sender, image_ids, **kwargs) -> None:
    refresh(image_ids)


def _tag_deleting(sender, instance: Tag, **kwargs) -> None:
    # The cascade that removes its links sends no m2m_changed: remember whose words change.
    instance._word_photos = list(instance.photos.values_list("image_id", flat=True))


def _tag_deleted(sender, instance: Tag, **kwargs) -> None:
    refresh(getattr(instance, "_word_photos", []))


def connect() -> None:
    post_save.connect(_metadata_saved, sender=Metadata, dispatch_uid="gallery.words.metadata")
    post_save.connect(_image_saved, sender=Image, dispatch_uid="gallery.words.image")
    post_save.connect(_tag_saved, sender=Tag, dispatch_uid="gallery.words.tag")
    m2m_changed.connect(_tags_changed, sender=Metadata.tags.through, dispatch_uid="gallery.words.tags")
    images_changed.connect(_bulk_changed, sender=Image, dispatch_uid="gallery.words.bulk")
    pre_delete.connect(_tag_deleting, sender=Tag, dispatch_uid="gallery.words.tag_deleting")
    post_delete.connect(_tag_deleted, sender=Tag, dispatch_uid="gallery.words.tag_deleted")
