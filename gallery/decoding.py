"""Turning bytes into a photo: sniff, decode once at reduced size, read EXIF, make renditions.

Only the formats imgsim supports are ever decoded (Pillow's `formats=`), the pixel
count is checked from the header before any pixels are decoded (decompression
bombs are refused in microseconds), and JPEGs are decoded at the smallest DCT scale
that still covers the preview (`Image.draft`), which is 2-3x cheaper than a full
decode of a 12-megapixel photo.
"""

import contextlib
import hashlib
import io
import math
import os
import re
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import cv2
import nanoarrow
import numpy as np
import pillow_heif  # a dependency: HEIC/HEIF photos (iPhones) are read like any other format
from django.conf import settings
from django.utils import timezone
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from gallery.storage import RENDITIONS

pillow_heif.register_heif_opener()

# Pillow registers most plugins lazily; `formats=` needs them all registered up front.
PILImage.init()

# Pillow format id -> the format imgsim stores (MPO is a multi-picture JPEG).
_ALL_SUPPORTED = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "WEBP": "WEBP",
    "GIF": "GIF",
    "TIFF": "TIFF",
    "BMP": "BMP",
    "HEIF": "HEIF",
}
# Resizing runs on the ingest's decode threads, next to the model's threads: no pool of OpenCV's own.
cv2.setNumThreads(0)

SUPPORTED_FORMATS = {name: stored for name, stored in _ALL_SUPPORTED.items() if name in PILImage.OPEN}

_MAGIC = [
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an XML/SVG document"),
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript/EPS file"),
    (b"\xc5\xd0\xd3\xc6", "an EPS file"),
    (b"8BPS", "a Photoshop PSD file"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"<!doctype html", "an HTML page"),
    (b"<html", "an HTML page"),
]


class NotAnImage(Exception):
    """The bytes are not a photo imgsim supports: skipped, not failed."""


class DecodeError(Exception):
    """The bytes claim to be a supported photo but cannot be used: failed."""


@dataclass
class ExifFacts:
    camera_make: str = ""
    camera_model: str = ""
    lens: str = ""
    taken_at: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    orientation: int = 1
    extra: dict = field(default_factory=dict)


@dataclass
class DecodedPhoto:
    format: str
    width: int
    height: int
    exif: ExifFacts
    renditions: dict[str, bytes]
    phash: str
    pixel_hash: str
    # Upright RGB pixels at preview and thumbnail size, kept so nothing decodes twice.
    pixels: PILImage.Image
    thumb_pixels: PILImage.Image

    def pixels_for(self, size: int) -> PILImage.Image:
        """The smallest kept pixels whose short side still covers a model input of this size."""
        return self.thumb_pixels if min(self.thumb_pixels.size) >= size else self.pixels


def describe_non_image(head: bytes) -> str:
    """Name what a non-image file looks like, for the per-file report."""
    if not head:
        return "empty file"
    lowered = head[:512].lstrip().lower()
    for magic, name in _MAGIC:
        if lowered.startswith(magic.lower()):
            return f"not a supported image: looks like {name}"
    if b"<svg" in lowered:
        return "not a supported image: looks like an SVG drawing"
    try:
        head[:512].decode("utf-8")
        return "not a supported image: looks like text"
    except UnicodeDecodeError:
        return "not a supported image: unknown format"


def _open(data: bytes) -> PILImage.Image:
    PILImage.MAX_IMAGE_PIXELS = settings.IMGSIM_MAX_PIXELS
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x the limit; imgsim refuses both.
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            return PILImage.open(io.BytesIO(data), formats=list(SUPPORTED_FORMATS))
        except UnidentifiedImageError:
            raise NotAnImage(describe_non_image(data[:512])) from None
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
            raise DecodeError(
                f"refused: declares more than {settings.IMGSIM_MAX_PIXELS:,} pixels (IMGSIM_MAX_PIXELS)"
            ) from None
        except (OSError, ValueError, SyntaxError) as error:
            raise DecodeError(f"cannot read this image: {in_words(error)}") from None


def in_words(error: Exception) -> str:
    """Pillow's reason, in words a person can act on ("Truncated File Read" means the file is cut short)."""
    text = str(error)
    lowered = text.lower()
    if "truncated" in lowered or "premature end" in lowered:
        return "the file is cut short (an interrupted download or copy?)"
    if "broken data stream" in lowered or "corrupt" in lowered or "invalid" in lowered:
        return f"the image data is damaged ({text})"
    return text


def decode(data: bytes) -> DecodedPhoto:
    """Decode a photo's bytes once; return its facts, EXIF, renditions and preview pixels."""
    if not data:
        raise NotAnImage("empty file")
    image = _open(data)
    image_format = SUPPORTED_FORMATS[image.format]
    own_size = image.size  # what the header declares; after a draft, image.size is the reduced decode's
    if own_size[0] * own_size[1] > settings.IMGSIM_MAX_PIXELS:
        raise DecodeError(f"refused: {own_size[0]}x{own_size[1]} is more than {settings.IMGSIM_MAX_PIXELS:,} pixels")
    preview_size = RENDITIONS["preview"][0]
    if image_format == "JPEG":
        image.draft("RGB", (preview_size, preview_size))
    # A decode costs ~4 bytes per pixel it produces (673 MB for 169 MP): big ones take turns,
    # so a process decoding many at once (uploads on gunicorn's threads) holds one at a time.
    # The turn starts before EXIF: reading a PNG's EXIF decodes the whole image.
    with _LARGE_DECODES if image.size[0] * image.size[1] > LARGE_DECODE_PIXELS else contextlib.nullcontext():
        exif = read_exif(image)
        width, height = own_size[::-1] if exif.orientation in (5, 6, 7, 8) else own_size
        try:
            image.seek(0)  # first frame of a GIF or multi-page TIFF
            image.load()
            # Shrunk before it is turned upright: turning the preview costs a tenth of turning the decode.
            upright = _upright(shrink(_to_rgb(image), preview_size), exif.orientation)
            if upright is not image:
                image.close()  # the full-size pixels go before the next big decode may start
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise DecodeError(f"cannot decode: {in_words(error)}") from None
        except MemoryError:
            raise DecodeError("cannot decode: not enough memory for this image") from None
    renditions = {"preview": _encode(upright, "jpg")}
    thumb = shrink(upright, RENDITIONS["thumb"][0])
    renditions["thumb"] = _encode(thumb, "webp")
    # The thumbnail follows deterministically from the decoded pixels, so equal
    # pixels give equal digests; hashing it costs 0.5 ms instead of 8 for the preview.
    pixel_hash = hashlib.sha256(thumb.tobytes()).hexdigest()[:32]
    return DecodedPhoto(
        format=image_format,
        width=width,
        height=height,
        exif=exif,
        renditions=renditions,
        phash=perceptual_hash(thumb),
        pixel_hash=pixel_hash,
        pixels=upright,
        thumb_pixels=thumb,
    )


def decode_query(data: bytes) -> PILImage.Image:
    """Decode a query photo (not stored) for the model only: reduced at decode time, within a pixel budget.

    A search request must not cost gigabytes: a few bytes can declare 13000x13000
    pixels. JPEGs are decoded at a reduced scale (draft); other formats are refused
    above IMGSIM_QUERY_MAX_PIXELS before a byte of pixels is allocated.
    """
    if not data:
        raise NotAnImage("empty file")
    image = _open(data)
    budget = settings.IMGSIM_QUERY_MAX_PIXELS
    try:
        if SUPPORTED_FORMATS[image.format] == "JPEG":
            image.draft("RGB", (QUERY_EDGE, QUERY_EDGE))
        width, height = image.size
        if width * height > budget:
            raise DecodeError(
                f"refused: a query photo of {width}x{height} is more than {budget:,} pixels "
                "(IMGSIM_QUERY_MAX_PIXELS); search with a smaller copy"
            )
        image.seek(0)
        image.load()
        return _upright(shrink(_to_rgb(image), QUERY_EDGE), read_exif(image).orientation)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise DecodeError(f"cannot decode: {in_words(error)}") from None
    except MemoryError:
        raise DecodeError("cannot decode: not enough memory for this image") from None


# Decodes producing more pixels than this run one at a time per process (see decode()).
LARGE_DECODE_PIXELS = 24_000_000
_LARGE_DECODES = threading.Lock()

# A query photo is decoded to about this long edge: twice the model's input, enough for its crop.
QUERY_EDGE = 512


def _to_rgb(image: PILImage.Image) -> PILImage.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = PILImage.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


# EXIF orientation -> the transpose that makes the pixels upright (as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}


def _upright(image: PILImage.Image, orientation: int) -> PILImage.Image:
    return image.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else image


def shrink(image: PILImage.Image, edge: int) -> PILImage.Image:
    """Return the image reduced so its long side is at most edge pixels; the input is left as it is.

    An integer box reduction first, then OpenCV's bilinear for what is left (less
    than 2x, where bilinear does not alias). Measured on a 12 MP photo decoded at
    half size: 3.6 ms to 1280 px, where Pillow's BOX took 10 and its BILINEAR 13.5,
    and closer to a Lanczos reference than BOX (PSNR 47 against 44 dB).
    """
    width, height = image.size
    factor = max(width, height) / edge
    if factor <= 1:
        return image
    if factor >= 2:
        image = image.reduce(int(factor))
    scale = edge / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if image.size == size:
        return image
    return _resized(image, size)


def _resized(image: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
    """OpenCV's bilinear resize of an RGB image, reading Pillow's pixels where they lie when it can.

    `np.asarray` copies the pixels out through Pillow's raw encoder with Python's lock
    held, so two decode threads took turns on it. Pillow lends an image kept in one
    block of memory (up to 16 MB of pixels: a 12 MP photo decoded at half size) as an
    Arrow array, 4 bytes a pixel; OpenCV resizes that in place, lock released, to the
    same pixels.
    """
    try:
        lent = nanoarrow.c_array(image).view().child(0).buffer(1) if image.mode == "RGB" else None
    except ValueError:  # rows in several blocks of memory: copied out instead
        lent = None
    if lent is None:
        return PILImage.fromarray(cv2.resize(np.asarray(image), size, interpolation=cv2.INTER_LINEAR))
    width, height = image.size
    pixels = np.frombuffer(lent, np.uint8).reshape(height, width, 4)
    return PILImage.frombytes("RGB", size, cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR), "raw", "RGBX")


def _encode(image: PILImage.Image, kind: str) -> bytes:
    # Into a file with a descriptor: Pillow writes a JPEG to one with the interpreter's lock
    # released, but holds it all along for an io.BytesIO, and the decode threads took turns.
    with _memory_file() as file:
        if kind == "webp":
            image.save(file, "WEBP", quality=80, method=2)  # same 4 KB as method 4, 1.6 ms instead of 5.6
        else:
            image.save(file, "JPEG", quality=82, optimize=True)  # progressive costs 2.5x for nothing here
        file.seek(0)
        return file.read()


def _memory_file():
    """A file of its own descriptor, in memory where the system has such files (Linux)."""
    if hasattr(os, "memfd_create"):
        return open(os.memfd_create("imgsim-rendition", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()


def perceptual_hash(image: PILImage.Image) -> str:
    import imagehash

    return str(imagehash.phash(image))


def open_for_embedding(image) -> PILImage.Image:
    """Open an image's stored preview (cheap), or its original when the preview is gone."""
    from gallery.storage import original_path, rendition_path

    preview = rendition_path(image, "preview")
    if preview.exists():
        opened = PILImage.open(preview, formats=["JPEG", "WEBP"])
        opened.load()
        return opened.convert("RGB")
    return decode(original_path(image).read_bytes()).pixels


# --- EXIF -------------------------------------------------------------------------

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_MAKE, _MODEL, _ORIENTATION = 0x010F, 0x0110, 0x0112
_DATETIME_ORIGINAL, _OFFSET_ORIGINAL, _LENS_MODEL = 0x9003, 0x9011, 0xA434
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _text(value, limit: int) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return ""
    return _CONTROL.sub("", value).strip()[:limit]


def _datetime(value, offset) -> datetime | None:
    text = _text(value, 32)
    try:
        parsed = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if not 1900 <= parsed.year <= 2100:
        return None
    match = re.fullmatch(r"([+-])(\d\d):(\d\d)", _text(offset, 8))
    if match:
        sign = 1 if match[1] == "+" else -1
        zone = dt_timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))
        return parsed.replace(tzinfo=zone)
    return timezone.make_aware(parsed, timezone.get_default_timezone())


def _degrees(value, ref) -> float | None:
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    degrees = d + m / 60 + s / 3600
    if not math.isfinite(degrees):
        return None
    return -degrees if _text(ref, 2).upper() in ("S", "W") else degrees


def read_exif(image: PILImage.Image) -> ExifFacts:
    """Read the EXIF facts imgsim keeps; any unreadable value is dropped, never fatal."""
    facts = ExifFacts()
    try:
        exif = image.getexif()
    except Exception:  # malformed EXIF blocks raise all kinds of errors
        return facts
    if not exif:
        return facts
    try:
        facts.camera_make = _text(exif.get(_MAKE), 64)
        facts.camera_model = _text(exif.get(_MODEL), 64)
        orientation = exif.get(_ORIENTATION)
        facts.orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1
    except Exception:
        pass
    try:
        details = exif.get_ifd(_EXIF_IFD)
        facts.lens = _text(details.get(_LENS_MODEL), 128)
        facts.taken_at = _datetime(details.get(_DATETIME_ORIGINAL), details.get(_OFFSET_ORIGINAL))
    except Exception:
        pass
    try:
        gps = exif.get_ifd(_GPS_IFD)
        latitude, longitude = _degrees(gps.get(2), gps.get(1)), _degrees(gps.get(4), gps.get(3))
        if latitude is not None and longitude is not None and abs(latitude) <= 90 and abs(longitude) <= 180:
            if (latitude, longitude) != (0.0, 0.0):  # 0,0 is what broken GPS units write
                facts.latitude, facts.longitude = round(latitude, 6), round(longitude, 6)
    except Exception:
        pass
    if facts.orientation != 1:
        facts.extra["orientation"] = facts.orientation
    return facts
