"""Photos made in bulk as database rows only (no files, no vectors), for tests about many photos."""

from datetime import timedelta

from django.utils import timezone

from gallery.models import Image


def photo_rows(count: int, **fields) -> list[Image]:
    """count photos, photo i added i seconds ago (the first is the newest); fields override the defaults."""
    now = timezone.now()
    defaults = {"format": "JPEG", "width": 40, "height": 30, "byte_size": 1000, "embedding_state": "done"}
    return Image.objects.bulk_create(
        Image(
            sha256=f"{i:064x}",
            file=f"originals/{i}.jpg",
            original_name=f"{i}.jpg",
            added_at=now - timedelta(seconds=i),
            **{**defaults, **fields},
        )
        for i in range(count)
    )
