import io
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from gallery import storage
from gallery.models import Image
from search.embeddings import model_name
from search.index import get_index
from tests.bad_inputs import gif_with_frames, write_bad_folder
from tests.conftest import ROOT
from tests.photos import write_library, write_photo
from tests.processes import library_consistency_check, manage, project_env, wait_for_count

pytestmark = pytest.mark.django_db(transaction=True)


def stored_files() -> set[Path]:
    return {path for _, path in storage.stored_files()}


def test_bad_inputs_are_reported_and_nothing_of_them_is_stored(tmp_path, ingest):
    folder = tmp_path / "mixed"
    expected = write_bad_folder(folder)
    write_photo(folder / "good one ünïcødé.jpg", 1)
    write_photo(folder / "sub" / "good two.png", 2, fmt="PNG")
    (folder / "anim.gif").write_bytes(gif_with_frames(30))
    report = ingest(folder)
    assert report.added == 3
    reasons = {Path(o.name).name: o.reason for o in report.outcomes if o.status in ("failed", "not_image")}
    for name, words in expected.items():
        assert name in reasons, f"{name} was not reported"
        assert words.lower() in reasons[name].lower(), (name, reasons[name])
    assert Image.objects.count() == 3
    assert len(stored_files()) == 3 * 3  # original + thumbnail + preview each, nothing else
    assert Image.objects.get(original_name="anim.gif").format == "GIF"
    assert Image.objects.get(original_name="good one ünïcødé.jpg")


def test_second_run_adds_nothing_and_does_not_decode(tmp_path, ingest, monkeypatch):
    write_library(tmp_path / "in", 5)
    assert ingest(tmp_path / "in").added == 5
    import gallery.ingest.pipeline

    monkeypatch.setattr(gallery.ingest.pipeline, "decode", lambda data: pytest.fail("re-decoded a known photo"))
    # Nor does it load the model (seconds of start-up for nothing to embed).
    monkeypatch.setattr(gallery.ingest.pipeline, "get_vectorizer", lambda: pytest.fail("loaded the model"))
    again = ingest(tmp_path / "in")
    assert again.added == 0 and again.known == 5
    (tmp_path / "in" / "copy.jpg").write_bytes((tmp_path / "in" / "photo_0001.jpg").read_bytes())
    assert ingest(tmp_path / "in").known == 6


@pytest.mark.parametrize("run", ["small", "large"])
def test_a_small_run_looks_up_its_own_hashes_and_a_large_one_reads_them_all(tmp_path, ingest, monkeypatch, run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import gallery.ingest.pipeline

    write_library(tmp_path / "library", 6)
    assert ingest(tmp_path / "library").added == 6
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("photo_0001.jpg", "photo_0004.jpg"):  # known, and the same bytes twice in this run
        (folder / name).write_bytes((tmp_path / "library" / name).read_bytes())
    (folder / "again.jpg").write_bytes((tmp_path / "library" / "photo_0004.jpg").read_bytes())
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")  # unreadable: reported, not hashed
    write_photo(folder / "new.jpg", 99)
    if run == "large":
        monkeypatch.setattr(gallery.ingest.pipeline, "LOOK_UP_HASHES_UP_TO", 0)
    with CaptureQueriesContext(connection) as queries:
        report = ingest(folder)
    assert (report.added, report.known) == (1, 3)
    assert [o.status for o in report.outcomes if o.name.endswith("gone.jpg")] in (["failed"], ["not_image"])
    every_hash = [q for q in queries if '"sha256" FROM "gallery_image"' in q["sql"] and "WHERE" not in q["sql"]]
    assert bool(every_hash) == (run == "large")


def test_in_place_references_files_and_skips_unchanged_ones_without_hashing(tmp_path, ingest, monkeypatch):
    write_library(tmp_path / "nas", 3)
    assert ingest(tmp_path / "nas", in_place=True).added == 3
    image = Image.objects.first()
    assert image.in_place and Path(image.file).is_file()
    assert not (storage.media_root() / "originals").exists()
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read {self} again"))
    report = ingest(tmp_path / "nas", in_place=True)
    assert report.known == 3 and {o.reason for o in report.outcomes} == {"unchanged since last ingest"}


def test_exif_is_extracted_and_orientation_applied(tmp_path, ingest):
    taken = datetime(2021, 7, 14, 9, 30, 0)
    write_photo(
        tmp_path / "in" / "rotated.jpg",
        3,
        size=(600, 400),
        make="Canon",
        model="Canon EOS R5",
        lens="RF24-105mm",
        taken=taken,
        gps=(46.5586, -7.9052),
        orientation=6,
    )
    ingest(tmp_path / "in")
    image = Image.objects.select_related("metadata").get()
    meta = image.metadata
    assert (image.width, image.height) == (400, 600)  # as displayed
    assert meta.camera_make == "Canon" and meta.camera_model == "Canon EOS R5" and meta.lens == "RF24-105mm"
    assert meta.camera == "Canon EOS R5"
    assert meta.taken_at == taken.replace(tzinfo=UTC)
    assert meta.latitude == pytest.approx(46.5586, abs=1e-3) and meta.longitude == pytest.approx(-7.9052, abs=1e-3)
    assert meta.extra["orientation"] == 6
    with PILImage.open(storage.rendition_path(image, "preview")) as preview:
        assert preview.width < preview.height  # upright
    with PILImage.open(storage.rendition_path(image, "thumb")) as thumb:
        assert max(thumb.size) == 320


def test_garbage_exif_is_dropped_not_fatal(tmp_path, ingest):
    exif = PILImage.Exif()
    exif[0x010F] = "x" * 70000
    exif[0x0110] = "<script>alert(1)</script>\x00\u202e"
    exif[0x0112] = 99
    exif[0x8769] = {0x9003: "not a date"}
    from PIL.TiffImagePlugin import IFDRational

    nan = IFDRational(0, 0)  # 0/0 reads back as NaN
    exif[0x8825] = {1: "N", 2: (nan, nan, nan), 3: "E", 4: (IFDRational(1), IFDRational(2), IFDRational(3))}
    image = PILImage.new("RGB", (64, 48), "blue")
    image.save(tmp_path / "weird.png", exif=exif.tobytes())  # PNG: no 64 KB cap on EXIF
    report = ingest(tmp_path / "weird.png")
    assert report.added == 1
    meta = Image.objects.get().metadata
    assert len(meta.camera_make) <= 64
    assert "\x00" not in meta.camera_model and "\u202e" not in meta.camera_model
    assert meta.taken_at is None and meta.latitude is None


def test_command_options(tmp_path, capsys):
    write_library(tmp_path / "in", 6)
    write_photo(tmp_path / "in" / "extra.png", 50, fmt="PNG")
    call_command("ingest", str(tmp_path / "in"), "--dry-run", "--no-progress")
    assert "7 would be added" in capsys.readouterr().out and Image.objects.count() == 0
    call_command(
        "ingest",
        str(tmp_path / "in"),
        "--extensions",
        ".png",
        "--no-progress",
        "--category",
        "scans",
        "--tag",
        "Archive",
        "--tag",
        "2024",
    )
    assert list(Image.objects.values_list("original_name", flat=True)) == ["extra.png"]
    meta = Image.objects.get().metadata
    assert meta.category == "scans" and sorted(meta.tags.values_list("name", flat=True)) == ["2024", "archive"]
    call_command("ingest", str(tmp_path / "in"), "--max-images", "2", "--no-progress")
    assert Image.objects.count() == 3
    call_command("ingest", str(tmp_path / "in"), "--no-recursive", "--no-progress", "--no-embed")
    out = capsys.readouterr().out
    assert "already known" in out and "wait for embeddings" in out
    assert Image.objects.count() == 7
    assert Image.objects.filter(embedding_state="pending").count() == 4


def test_a_name_that_is_not_utf8_is_copied_in_and_refused_in_place(tmp_path, capsys):
    """A Latin-1 name (an old camera card, a Windows share): Python reads it with surrogates no database takes."""
    folder = tmp_path / "in"
    write_library(folder, 1)
    write_photo(Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.jpg")), 7)
    call_command("ingest", str(folder), "--no-progress", "--no-embed")
    assert "2 added" in capsys.readouterr().out
    photo = Image.objects.get(original_name="café.jpg")  # read as Windows-1252
    assert photo.source_path == f"{folder}/caf\\xe9.jpg"

    call_command("ingest", str(folder), "--no-progress", "--no-embed", "--in-place")
    printed = capsys.readouterr()
    assert "1 already known" in printed.out and f"failed  {folder}/caf\\xe9.jpg: its name is not UTF-8" in printed.err
    assert Image.objects.count() == 2


def test_missing_model_stores_photos_pending_and_says_why(tmp_path, settings, capsys):
    settings.IMGSIM_EMBEDDER = {
        **settings.IMGSIM_EMBEDDER,
        "OPTIONS": {**settings.IMGSIM_EMBEDDER["OPTIONS"], "model": str(tmp_path / "no-such-model")},
    }
    from search.embeddings import get_embedder

    get_embedder.cache_clear()
    write_library(tmp_path / "in", 3)
    call_command("ingest", str(tmp_path / "in"), "--no-progress")
    captured = capsys.readouterr()
    assert "3 added" in captured.out and "3 photo(s) wait for embeddings" in captured.out
    assert "Embeddings stay pending" in captured.err and "no-such-model" in captured.err
    assert Image.objects.filter(embedding_state="pending").count() == 3


def test_batches_the_model_fails_on_are_stored_pending_and_the_run_goes_on(tmp_path, ingest, monkeypatch):
    from search.embeddings import get_embedder

    embedder = get_embedder()
    real_encode, calls = embedder.encode_pixels, []

    def fails_after_the_first_batch(pixels):
        calls.append(len(pixels))
        if len(calls) > 1:
            raise RuntimeError("out of memory in the model")
        return real_encode(pixels)

    monkeypatch.setattr(embedder, "encode_pixels", fails_after_the_first_batch)
    write_library(tmp_path / "in", 10, size=(96, 72))
    report = ingest(tmp_path / "in", batch_size=4)
    assert calls[0] == 4 and 2 in calls and report.added == 10 and report.embedded == 4
    assert report.model_error == "embedding failed: out of memory in the model"
    pending = Image.objects.filter(embedding_state="pending").order_by("pk")
    assert [image.original_name for image in pending] == [f"photo_{i:04d}.jpg" for i in range(4, 10)]
    assert len(get_index().ids(model_name())) == 4  # the first batch is searchable already


def test_missing_or_empty_folder_aborts_before_changing_anything(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("ingest", str(tmp_path / "nope"), "--no-progress")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match="no files"):
        call_command("ingest", str(tmp_path / "empty"), "--no-progress")
    assert Image.objects.count() == 0


def test_file_vanishing_mid_run_fails_only_that_file(tmp_path):
    from gallery.ingest import Pipeline, discover

    write_library(tmp_path / "in", 3)
    sources, _ = discover(tmp_path / "in")
    (tmp_path / "in" / "photo_0001.jpg").unlink()
    report = Pipeline().run(sources)
    assert report.added == 2
    assert [o.reason for o in report.failed] == ["file vanished before it could be read"]


def test_storage_write_failure_leaves_nothing_behind(tmp_path, ingest, monkeypatch):
    write_library(tmp_path / "in", 3)
    real_write = storage.write_atomic

    def failing(relpath, data):
        if "preview" in relpath and len(stored_files()) > 2:
            raise OSError(28, "No space left on device")
        return real_write(relpath, data)

    monkeypatch.setattr(storage, "write_atomic", failing)
    report = ingest(tmp_path / "in")
    assert report.added == 1
    assert all("No space left" in o.reason for o in report.failed) and len(report.failed) == 2
    assert len(stored_files()) == 3
    assert {int(pk) for pk in get_index().ids(model_name())} == set(Image.objects.values_list("pk", flat=True))


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_and_reconcile_ends_consistent(tmp_path, tiny_model):
    env = project_env(tmp_path, tiny_model)
    write_library(tmp_path / "in", 48, size=(320, 240))
    manage(env, "migrate", "-v0")
    for at_least in (8, 24):  # two kills mid-ingest: 0 < photos done < 48 each time
        process = subprocess.Popen(
            [sys.executable, "manage.py", "ingest", str(tmp_path / "in"), "--batch-size", "4", "--no-progress"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        done = wait_for_count(env, "SELECT COUNT(*) FROM gallery_image", at_least=at_least, process=process)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert done is not None and done < 48, "the kill must land mid-ingest"
    manage(env, "ingest", str(tmp_path / "in"), "--no-progress")
    manage(env, "reconcile")
    assert "consistent" in manage(env, "shell", "-c", library_consistency_check(48)).stdout
    assert "Nothing to fix." in manage(env, "reconcile").stdout


@pytest.mark.parametrize(
    "fmt, suffix",
    [("PNG", ".png"), ("WEBP", ".webp"), ("GIF", ".gif"), ("TIFF", ".tif"), ("BMP", ".bmp"), ("HEIF", ".heic")],
)
def test_every_supported_format_is_ingested_whatever_its_name(tmp_path, ingest, fmt, suffix):
    from tests.photos import photo_image

    image = photo_image(9, size=(120, 90))
    # The extension lies on purpose: the type is sniffed from the bytes.
    path = tmp_path / "in" / f"wrongly named{'.jpg' if suffix != '.jpg' else '.png'}"
    path.parent.mkdir()
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.from_pillow(image).save(path, quality=80)
    else:
        image.save(path, fmt)
    report = ingest(tmp_path / "in")
    assert report.added == 1, report.outcomes
    stored = Image.objects.get()
    assert stored.format == fmt and (stored.width, stored.height) == (120, 90)
    assert storage.original_path(stored).suffix == {"HEIF": ".heic", "TIFF": ".tif"}.get(fmt, suffix)
    assert storage.rendition_path(stored, "thumb").exists()


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed meanwhile
        return ""


def test_renditions_come_out_whole_and_leave_no_file_open(tmp_path):
    from gallery.decoding import decode

    write_photo(tmp_path / "a.jpg", 3, size=(640, 480))
    data = (tmp_path / "a.jpg").read_bytes()
    renditions = [decode(data).renditions for _ in range(20)]
    assert not [fd for fd in os.listdir("/proc/self/fd") if "imgsim-rendition" in _link(f"/proc/self/fd/{fd}")]
    assert all(r == renditions[0] for r in renditions)  # the same bytes every time
    preview = PILImage.open(io.BytesIO(renditions[0]["preview"]))
    thumb = PILImage.open(io.BytesIO(renditions[0]["thumb"]))
    preview.load(), thumb.load()  # whole files: a cut-short one fails to load
    assert (preview.format, preview.size, thumb.format, thumb.size) == ("JPEG", (640, 480), "WEBP", (320, 240))


@pytest.mark.parametrize("orientation, upright_size", [(1, (4000, 3000)), (6, (3000, 4000)), (3, (4000, 3000))])
def test_a_large_jpeg_keeps_its_own_size_and_is_shrunk_then_turned_upright(orientation, upright_size):
    """A 12 MP JPEG is decoded at half size (a draft), but the photo's size is its own;
    its preview is shrunk first and turned upright after, the same as turned then shrunk."""
    import cv2
    import numpy as np

    from gallery.decoding import _upright, decode
    from tests.photos import photo_bytes

    data = photo_bytes(7, size=(4000, 3000), orientation=orientation)
    decoded = decode(data)
    assert (decoded.width, decoded.height) == upright_size
    assert decoded.pixels.size == (upright_size[0] * 1280 // 4000, upright_size[1] * 1280 // 4000)
    with PILImage.open(io.BytesIO(data)) as reference:
        reference.draft("RGB", (1280, 1280))
        turned = np.asarray(_upright(reference.convert("RGB"), orientation))
    expected = cv2.resize(turned, decoded.pixels.size, interpolation=cv2.INTER_LINEAR)
    assert np.abs(np.asarray(decoded.pixels).astype(int) - expected).max() <= 1  # the order of the passes' rounding


def test_an_upgrade_gives_large_jpegs_stored_at_their_draft_size_their_own(tmp_path, ingest):
    """Photos ingested while the reduced decode's size was stored get their files' sizes back."""
    import importlib

    from django.apps import apps

    from gallery.models import LibraryVersion
    from gallery.versions import library_version
    from search.models import IndexOutbox
    from tests.photos import photo_bytes

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "portrait.jpg").write_bytes(photo_bytes(1, size=(4000, 3000), orientation=6))
    (tmp_path / "in" / "landscape.jpg").write_bytes(photo_bytes(2, size=(2600, 2600)))
    (tmp_path / "in" / "gone.jpg").write_bytes(photo_bytes(3, size=(3000, 3000)))
    (tmp_path / "in" / "small.jpg").write_bytes(photo_bytes(4, size=(1300, 1300)))
    assert ingest(tmp_path / "in").added == 4
    right = dict(Image.objects.values_list("original_name", "width"))
    assert right == {"portrait.jpg": 3000, "landscape.jpg": 2600, "gone.jpg": 3000, "small.jpg": 1300}
    Image.objects.filter(original_name="portrait.jpg").update(width=1500, height=2000)  # as stored before
    Image.objects.filter(original_name__in=["landscape.jpg", "gone.jpg"]).update(width=1300, height=1300)
    storage.original_path(Image.objects.get(original_name="gone.jpg")).unlink()
    IndexOutbox.objects.all().delete()
    LibraryVersion.objects.get_or_create(name="library")
    version = library_version()

    importlib.import_module("gallery.migrations.0017_jpeg_sizes_from_their_files").repair(apps, None)
    sizes = {name: (w, h) for name, w, h in Image.objects.values_list("original_name", "width", "height")}
    assert sizes == {
        "portrait.jpg": (3000, 4000),
        "landscape.jpg": (2600, 2600),
        "gone.jpg": (1300, 1300),  # no file to read: left as it was
        "small.jpg": (1300, 1300),
    }
    repaired = set(
        Image.objects.filter(original_name__in=["portrait.jpg", "landscape.jpg"]).values_list("pk", flat=True)
    )
    assert set(IndexOutbox.objects.values_list("image_id", flat=True)) == repaired
    assert library_version() == version + 1


@pytest.mark.parametrize(
    "size, edge, expected",
    [
        ((2000, 1500), 1280, (1280, 960)),  # a 12 MP JPEG's half-size decode to the preview
        ((1500, 2000), 1280, (960, 1280)),  # portrait
        ((1280, 960), 320, (320, 240)),  # preview to thumbnail: box reduction alone
        ((4032, 3024), 1280, (1280, 960)),  # a full decode (PNG, HEIC): box 3x, then bilinear
        ((12000, 3), 320, (320, 1)),  # a strip keeps at least one row
        ((800, 600), 1280, (800, 600)),  # never enlarged
    ],
)
def test_shrink_sizes(size, edge, expected):
    from gallery.decoding import shrink

    image = PILImage.new("RGB", size, (10, 200, 30))
    shrunk = shrink(image, edge)
    assert shrunk.size == expected and shrunk.mode == "RGB"
    assert shrunk.getpixel((0, 0)) == (10, 200, 30)  # a flat colour stays that colour
    assert image.size == size  # the input is left alone


def test_shrink_keeps_detail_without_aliasing():
    import numpy as np

    from gallery.decoding import shrink

    # Vertical stripes 4 px wide: shrunk 1.5625x they must stay stripes of about
    # 2.56 px (no moire: column means swing from dark to light), not a flat grey.
    stripes = np.zeros((1500, 2000, 3), dtype=np.uint8)
    stripes[:, (np.arange(2000) // 4) % 2 == 1] = 255
    shrunk = np.asarray(shrink(PILImage.fromarray(stripes), 1280)).astype(float)
    columns = shrunk[:, :, 0].mean(axis=0)
    assert columns.max() > 200 and columns.min() < 55
    assert abs(columns.mean() - 127.5) < 10  # brightness kept


@pytest.mark.parametrize("size", [(2000, 1500), (1500, 2000), (2401, 1801)])
def test_shrink_reads_pillows_pixels_in_place_to_the_same_result(size):
    """A 12 MP photo's half-size decode is lent by Pillow (one block of memory) and resized
    where it lies; a larger image lies in several blocks and is copied out. Both give
    exactly what OpenCV gives from a copy, and the result outlives its source."""
    import cv2
    import nanoarrow
    import numpy as np

    from gallery.decoding import shrink

    noise = np.random.default_rng(size[0]).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = PILImage.fromarray(noise)
    lent = size[0] * size[1] * 4 <= 16 << 20
    if lent:
        assert len(nanoarrow.c_array(image).view().child(0).buffer(1)) == size[0] * size[1] * 4
    else:
        with pytest.raises(ValueError):
            nanoarrow.c_array(image)
    shrunk = shrink(image, 1280)
    expected = cv2.resize(noise, shrunk.size, interpolation=cv2.INTER_LINEAR)
    image.close()
    assert shrunk.mode == "RGB" and np.array_equal(np.asarray(shrunk), expected)


def test_a_starting_web_process_computes_embeddings_left_waiting(tmp_path, ingest, settings):
    """Photos ingested while the model was missing become searchable once the app starts with it."""
    import time

    from gallery import background
    from search.python_api import find_similar
    from search.tasks import embed_waiting_at_start

    write_library(tmp_path / "in", 5)
    report = ingest(tmp_path / "in", embed=False)  # as when the model could not be loaded
    assert report.added == 5 and Image.objects.waiting_for_embedding().count() == 5
    assert embed_waiting_at_start()
    while background.running().get("embed-waiting"):
        time.sleep(0.05)  # polls the thread's own state
    assert Image.objects.waiting_for_embedding().count() == 0
    assert len(find_similar(query_text="photo", top_k=10, threshold=-1)) == 5
    assert not embed_waiting_at_start()  # nothing left: no thread
    write_library(tmp_path / "more", 2, start=10)
    ingest(tmp_path / "more", embed=False)
    settings.IMGSIM_WORKER = True
    assert not embed_waiting_at_start()  # a worker does it instead (search.tasks.catch_up)


def test_in_place_copies_keep_the_least_copy_like_path_and_list_the_others(tmp_path, ingest, viewer_client):
    from tests.photos import photo_bytes

    data = photo_bytes(3)
    (tmp_path / "in" / "library").mkdir(parents=True)
    for name in ("copy of grace_hopper.jpg", "library/grace_hopper.jpg", "grace_hopper (1).jpg"):
        (tmp_path / "in" / name).write_bytes(data)
    report = ingest(tmp_path / "in", in_place=True)
    assert report.added == 1 and report.known == 2
    photo = Image.objects.get()
    assert photo.source_path == str(tmp_path / "in" / "library" / "grace_hopper.jpg")
    assert photo.original_name == "grace_hopper.jpg" and photo.file == photo.source_path
    assert photo.other_paths == [str(tmp_path / "in" / n) for n in ("grace_hopper (1).jpg", "copy of grace_hopper.jpg")]
    html = viewer_client.get(f"/images/{photo.pk}/").content.decode()
    assert "Also at" in html and "copy of grace_hopper.jpg" in html
    assert viewer_client.get(f"/images/{photo.pk}/original").status_code == 200
    again = ingest(tmp_path / "in", in_place=True)
    assert again.added == 0 and Image.objects.get().other_paths == photo.other_paths


def test_an_in_place_photo_whose_file_is_deleted_is_found_hidden_and_listed(tmp_path, ingest, viewer_client):
    import io

    from search.python_api import find_similar
    from search.reconcile import reconcile

    paths = write_library(tmp_path / "in", 4)
    ingest(tmp_path / "in", in_place=True)
    gone = Image.objects.get(source_path=str(paths[1]))
    moved = tmp_path / "elsewhere" / "moved.jpg"
    moved.parent.mkdir()
    data = paths[1].read_bytes()
    paths[1].unlink()
    result = reconcile()
    assert result.files_missing == [str(paths[1])] and not result.clean
    assert any("whose file is missing" in line and str(paths[1]) in line for line in result.lines())
    assert gone.pk not in [r["id"] for r in find_similar(query_text="photo", top_k=10, threshold=-1)]
    page = viewer_client.get(f"/images/{gone.pk}/").content.decode()
    assert page.count("The original file is missing") == 1 and "ingest --in-place" in page
    assert reconcile().files_missing == [str(paths[1])]  # still listed until it is dealt with

    err = io.StringIO()
    call_command("ingest", str(tmp_path / "in"), "--in-place", "--no-progress", stdout=io.StringIO(), stderr=err)
    assert "have lost their file" in err.getvalue() and str(paths[1]) in err.getvalue()

    moved.write_bytes(data)  # the file turns up in another folder: ingesting that folder finds it
    ingest(moved.parent, in_place=True)
    gone.refresh_from_db()
    assert gone.missing_since is None and gone.source_path == str(moved)
    assert gone.pk in [r["id"] for r in find_similar(query_text="photo", top_k=10, threshold=-1)]
    assert reconcile().clean
