"""The decode path as a fuzz target: bytes in, a decoded photo or one of two clear errors out.

Used by tests/test_fuzz.py (hypothesis, a bounded number of examples in every run) and by
bench/fuzz.py (atheris, coverage-guided, as long as you like).
"""

import io

from PIL import Image as PILImage

SEED_FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"]


def seed_images() -> dict[str, bytes]:
    """Small valid files of every supported format, with EXIF where the format carries it."""
    from tests.photos import exif_bytes, photo_image

    image = photo_image(7, size=(64, 48))
    exif = exif_bytes(make="Canon", model="EOS", orientation=6)
    seeds = {}
    for fmt in SEED_FORMATS:
        buffer = io.BytesIO()
        options = {"exif": exif} if fmt in ("JPEG", "PNG", "WEBP", "TIFF") else {}
        (image.convert("P") if fmt == "GIF" else image).save(buffer, fmt, **options)
        seeds[fmt] = buffer.getvalue()
    return seeds


def decode_one(data: bytes) -> None:
    """Decode bytes as ingest does; raise only if something other than a clear refusal happens."""
    from gallery.decoding import DecodeError, NotAnImage, decode

    try:
        photo = decode(data)
    except (NotAnImage, DecodeError):
        return
    assert photo.width > 0 and photo.height > 0
    for kind, rendition in photo.renditions.items():  # what we wrote must be a valid image itself
        with PILImage.open(io.BytesIO(rendition)) as check:
            check.verify()
