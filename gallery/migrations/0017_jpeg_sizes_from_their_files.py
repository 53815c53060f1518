"""JPEG photos of 2560 pixels a side or more stored their reduced decode's size: the files say their own.

Decoding a large JPEG at half or quarter scale (Pillow's draft) also changed the size
the image reported, and from ac283e9 on that reduced size was stored as the photo's
width and height. Such a photo has both sides at 1280 or more; its file's header
(read without decoding pixels) gives the true size, turned as its EXIF orientation
says. The changed photos are queued for the vector index (their metadata there holds
the size) and the library's version moves, so cached pages are not served.
"""

from pathlib import Path

from django.conf import settings
from django.db import migrations
from django.db.models import F
from PIL import Image as PILImage

BATCH = 1000


def _upright_size(path: Path) -> tuple[int, int] | None:
    try:
        with PILImage.open(path, formats=["JPEG", "MPO"]) as image:
            orientation = image.getexif().get(0x0112)
            width, height = image.size
    except Exception:  # a file gone or unreadable: its row stays as it is
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def repair(apps, schema_editor):
    Image = apps.get_model("gallery", "Image")
    IndexOutbox = apps.get_model("search", "IndexOutbox")
    LibraryVersion = apps.get_model("gallery", "LibraryVersion")
    candidates = Image.objects.filter(format="JPEG", width__gte=1280, height__gte=1280)
    ids = list(candidates.order_by("pk").values_list("pk", flat=True))
    repaired = 0
    if len(ids) > 10 * BATCH:
        print(f"\n  reading the sizes of {len(ids):,} large JPEG photos from their files", flush=True)
    for start in range(0, len(ids), BATCH):  # read a batch, then write it: no cursor open across writes
        rows = Image.objects.filter(pk__in=ids[start : start + BATCH]).values_list(
            "pk", "file", "in_place", "width", "height"
        )
        changed = []
        for pk, file, in_place, width, height in rows:
            size = _upright_size(Path(file) if in_place else Path(settings.MEDIA_ROOT) / file)
            if size is not None and size != (width, height):
                changed.append(Image(pk=pk, width=size[0], height=size[1]))
        if changed:
            Image.objects.bulk_update(changed, ["width", "height"])
            IndexOutbox.objects.bulk_create([IndexOutbox(image_id=image.pk) for image in changed])
            repaired += len(changed)
    if repaired:
        LibraryVersion.objects.filter(name="library").update(version=F("version") + 1)


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0016_postgresql_live_grid_index"),
        ("search", "0005_indexed_entry"),
    ]

    operations = [migrations.RunPython(repair, migrations.RunPython.noop)]
