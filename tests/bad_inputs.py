"""Files that must never crash ingest or upload, generated on the fly."""

import io
import os
import struct
import zlib
from pathlib import Path

from tests.photos import photo_bytes


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


# name -> (bytes, reason words expected in the report)
def bad_files() -> dict[str, tuple[bytes, str]]:
    jpeg = photo_bytes(5)
    return {
        "empty.jpg": (b"", "empty file"),
        "notes.jpg": (b"shopping list: milk, eggs\n", "looks like text"),
        "page.png": (b"<!doctype html><html><script>alert(1)</script></html>", "HTML"),
        "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "cannot decode"),
        "cut-short.jpg": (jpeg[:100], "the file is cut short"),
        "bomb.png": (png_declaring(40000, 40000), "pixels"),
        "document.jpg": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "PDF"),
        "layers.jpg": (b"8BPS\x00\x01" + b"\x00" * 40, "Photoshop"),
        "poster.jpg": (b"%!PS-Adobe-3.0 EPSF-3.0\n", "PostScript"),
    }


def write_bad_folder(folder: Path) -> dict[str, str]:
    """Write every bad file (plus a FIFO and links that must be skipped); return name -> reason words."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (data, words) in bad_files().items():
        (folder / name).write_bytes(data)
        expected[name] = words
    os.mkfifo(folder / "pipe.jpg")
    expected["pipe.jpg"] = "not a regular file"
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    expected["loop.jpg"] = "looping link"
    outside = folder.parent / "outside.jpg"
    outside.write_bytes(photo_bytes(6))
    (folder / "escape.jpg").symlink_to(outside)
    expected["escape.jpg"] = "outside the folder"
    return expected


def gif_with_frames(frames: int) -> bytes:
    from PIL import Image

    images = [Image.new("P", (32, 32), color=i % 256) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


def png_html_polyglot() -> bytes:
    """A real PNG with an HTML page after its end: valid as an image, dangerous if served as HTML."""
    buffer = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (40, 30), "orange").save(buffer, "PNG")
    return buffer.getvalue() + b"<html><script>alert('polyglot')</script></html>"


def jpeg_with_looping_exif() -> bytes:
    """A JPEG whose EXIF IFD points at itself (IFD0's Exif pointer and next-IFD both loop back)."""
    from PIL import Image

    tiff = b"II*\x00" + struct.pack("<I", 8)
    # IFD0 at offset 8: one entry, ExifIFD (0x8769, LONG) -> 8 (itself); next IFD -> 8 (itself).
    ifd = struct.pack("<H", 2) + struct.pack("<HHII", 0x0110, 2, 4, 0x00414141) + struct.pack("<HHII", 0x8769, 4, 1, 8)
    ifd += struct.pack("<I", 8)
    exif = b"Exif\x00\x00" + tiff + ifd
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), "teal").save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def huge_real_jpeg(megapixels: int = 100) -> bytes:
    """A real, fully decodable JPEG of about this many megapixels (simple content: quick to make)."""
    from PIL import Image, ImageDraw

    side = int((megapixels * 1_000_000) ** 0.5)
    image = Image.new("RGB", (side, side), (40, 90, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse([side // 4, side // 4, side * 3 // 4, side * 3 // 4], fill=(230, 200, 60))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


def hostile_extras() -> dict[str, tuple[bytes, str]]:
    """More hostile files for the hardening suite: name -> (bytes, expected outcome words or 'added')."""
    return {
        "polyglot.png": (png_html_polyglot(), "added"),
        "bomb-20k.png": (png_declaring(20000, 20000), "pixels"),
        "frames-1000.gif": (gif_with_frames(1000), "added"),
        "looping-exif.jpg": (jpeg_with_looping_exif(), "added"),
        "100-megapixels.jpg": (huge_real_jpeg(100), "added"),
    }
