"""A photo used as a search query costs bounded memory, whatever it declares, and is refused by size unread."""

import struct
import subprocess
import sys
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from search.errors import InvalidQuery, QueryTooLarge
from search.python_api import find_similar
from tests.conftest import ROOT
from tests.photos import photo_bytes
from tests.processes import project_env

pytestmark = pytest.mark.django_db

# The peak resident memory of the child's own address space (VmHWM). Not ru_maxrss: that
# also counts the forked parent's pages, and a busy test worker's would hide any growth.
PEAK_RSS = (
    "def peak_mb():\n"
    "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
    "    return int(line.split()[1]) / 1024\n"
)


def png_bomb(width: int = 13000, height: int = 13000) -> bytes:
    """A PNG of a few hundred KB that declares width x height black pixels (507 MB decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\0" + b"\0" * (width * 3)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_a_query_photo_declaring_too_many_pixels_is_refused_before_decoding():
    with pytest.raises(InvalidQuery, match="more than 32,000,000 pixels.*IMGSIM_QUERY_MAX_PIXELS"):
        find_similar(query_image=png_bomb())


def test_a_large_jpeg_query_is_decoded_at_reduced_size(tmp_path, ingest, django_capture_on_commit_callbacks):
    from tests.photos import write_library

    write_library(tmp_path / "in", 3, size=(96, 72))
    with django_capture_on_commit_callbacks(execute=True):
        ingest(tmp_path / "in")
    results = find_similar(query_image=photo_bytes(3, size=(6000, 4000)), top_k=3, threshold=-1)
    assert len(results) == 3


def test_an_oversized_upload_is_refused_by_its_size_unread(viewer_client, settings):
    settings.IMGSIM_UPLOAD_MAX_BYTES = 1000
    upload = SimpleUploadedFile("big.jpg", photo_bytes(1, size=(200, 150)), content_type="image/jpeg")
    response = viewer_client.post(reverse("search:page"), {"image": upload}, headers={"HX-Request": "true"})
    assert response.status_code == 413 and "larger than 0 MB" in response.content.decode()
    with pytest.raises(QueryTooLarge):
        find_similar(query_image=b"x" * 2000)


def test_a_search_with_a_pixel_bomb_stays_under_300_mb(tmp_path, tiny_model):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    code = (
        f"import django; django.setup()\n{PEAK_RSS}"
        "from search.embeddings import get_embedder; get_embedder().dimension  # the model, loaded first\n"
        "before = peak_mb()\n"
        "from search.python_api import find_similar\n"
        f"try: find_similar(query_image_path={str(bomb)!r})\n"
        "except Exception as error: print(type(error).__name__)\n"
        "print('GROWTH_MB', peak_mb() - before)"
    )
    env = {**project_env(tmp_path, tiny_model), "DJANGO_SETTINGS_MODULE": "imgsim_site.settings"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    growth = float(run.stdout.split("GROWTH_MB")[1])
    assert "InvalidQuery" in run.stdout and growth < 300, run.stdout


def test_big_decodes_take_turns_so_a_process_holds_one_at_a_time(tmp_path):
    """Three uploads of a 169 MP PNG at once: the process grows by about one decode, not three."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    code = (
        f"import threading, django; django.setup()\n{PEAK_RSS}"
        "from gallery.decoding import decode\n"
        f"data = open({str(bomb)!r}, 'rb').read()\n"
        "before = peak_mb()\n"
        "errors = []\n"
        "def work():\n"
        "    try: decode(data)\n"
        "    except Exception as error: errors.append(repr(error))\n"
        "threads = [threading.Thread(target=work) for _ in range(3)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print('ERRORS', errors)\n"
        "print('GROWTH_MB', peak_mb() - before)"
    )
    env = {**project_env(tmp_path, "unused"), "DJANGO_SETTINGS_MODULE": "imgsim_site.settings"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "ERRORS []" in run.stdout, run.stdout
    growth = float(run.stdout.split("GROWTH_MB")[1])
    assert 300 < growth < 850, f"{growth:.0f} MB for three concurrent 169 MP decodes (one is ~690 MB)"


@pytest.mark.django_db(transaction=True)
def test_search_from_the_shell(tmp_path, ingest):
    import io
    import json

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from tests.photos import write_library

    paths = write_library(tmp_path / "in", 4, size=(96, 72))
    ingest(tmp_path / "in", in_place=True)
    out = io.StringIO()
    call_command("search", "red car", "--top-k", "2", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(str(tmp_path / "in") in line for line in lines)
    out = io.StringIO()
    call_command("search", "--image", str(paths[1]), "--top-k", "1", "--json", stdout=out)
    (best,) = json.loads(out.getvalue())
    assert best["source_path"] == str(paths[1]) and best["similarity"] > 0.99
    out = io.StringIO()
    call_command("search", "cat", "--filter", '{"format": "PNG"}', stdout=out)
    assert out.getvalue().strip() == "No photos match."
    for args, message in (
        ([], "Give a text query"),
        (["x", "--filter", "{nope"], "not valid JSON"),
        (["--image", str(tmp_path / "absent.jpg")], "No such file"),
        (["x", "--filter", '{"colour": "red"}'], "colour"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("search", *args, stdout=io.StringIO())
