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
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# name -> (bytes, reason words expected in the report)
def bad_files() -> dict[str, tuple[bytes, str]]:
    jpeg = photo_bytes(5)
    return {
        "empty.jpg": (b"", "empty file"),
        "notes.jpg": (b"shopping list: milk, eggs\n", "looks like text"),
        "page.png": (b"<!doctype html><html><script>alert(1)</script></html>", "HTML"),
        "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "cannot decode"),
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
