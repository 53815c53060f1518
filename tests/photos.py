"""Photo-like test images generated on the fly: gradients, noise and shapes, with EXIF."""

import io
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def photo_image(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0, 255, 3)
    tilt = rng.uniform(-0.5, 0.5, (3, 2))
    channels = [base[c] + tilt[c, 0] * x * 255 / width + tilt[c, 1] * y * 255 / height for c in range(3)]
    pixels = np.stack(channels, -1) + rng.normal(0, 8, (height, width, 3))
    image = Image.fromarray(pixels.clip(0, 255).astype("uint8"))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, x1 = sorted(rng.integers(0, width, 2))
        y0, y1 = sorted(rng.integers(0, height, 2))
        color = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1 + 1, y1 + 1], fill=color)
    return image


def exif_bytes(
    *,
    make="",
    model="",
    lens="",
    taken: datetime | None = None,
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
) -> bytes:
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if orientation:
        exif[0x0112] = orientation
    details = {}
    if taken:
        details[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if lens:
        details[0xA434] = lens
    if details:
        exif[0x8769] = details
    if gps:

        def dms(value):
            value = abs(value)
            d = int(value)
            m = int((value - d) * 60)
            s = Fraction(round(((value - d) * 60 - m) * 60 * 100), 100)
            return (Fraction(d), Fraction(m), s)

        exif[0x8825] = {1: "N" if gps[0] >= 0 else "S", 2: dms(gps[0]), 3: "E" if gps[1] >= 0 else "W", 4: dms(gps[1])}
    return exif.tobytes()


def photo_bytes(seed: int, size=(640, 480), fmt: str = "JPEG", quality: int = 88, **exif) -> bytes:
    image = photo_image(seed, size)
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = exif_bytes(**exif)
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write_photo(path: Path, seed: int, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo_bytes(seed, **kwargs))
    return path


def write_library(folder: Path, count: int, *, start: int = 0, size=(480, 360)) -> list[Path]:
    return [write_photo(folder / f"photo_{start + i:04d}.jpg", start + i, size=size) for i in range(count)]
