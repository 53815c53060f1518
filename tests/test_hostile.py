"""Hostile files through every door (ingest, upload page, API, import) and what a power cut does.

Each bad file gets a clear per-file reason (or a 4xx), nothing crashes, nothing of it
is stored, and memory stays bounded; the numbers are printed by bench/hostile.py.
"""

import errno
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from gallery import storage
from gallery.models import Image
from tests.bad_inputs import bad_files, hostile_extras, write_bad_folder
from tests.conftest import ROOT
from tests.photos import photo_bytes, write_library
from tests.processes import library_consistency_check, manage, project_env, wait_for_count

pytestmark = pytest.mark.django_db(transaction=True)
SUBPROCESS_ONLY = pytest.mark.skipif(
    bool(os.environ.get("IMGSIM_TEST_DATABASE_URL")),
    reason="runs its own SQLite data dir in subprocesses; once is enough",
)


def stored_files() -> set[Path]:
    return {path for _, path in storage.stored_files()}


@SUBPROCESS_ONLY
@pytest.mark.slow
def test_hostile_folder_through_ingest_with_bounded_memory(tmp_path, tiny_model):
    folder = tmp_path / "hostile"
    expected = write_bad_folder(folder)
    for name, (data, words) in hostile_extras().items():
        (folder / name).write_bytes(data)
        expected[name] = words
    env = project_env(tmp_path, tiny_model)
    manage(env, "migrate", "-v0")
    result = subprocess.run(
        ["/usr/bin/time", "-f", "peak-kb %M", sys.executable, "manage.py", "ingest", str(folder), "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    for name, words in expected.items():
        line = next((line for line in output.splitlines() if name in line), "")
        if words == "added":
            assert not line, f"{name} should have been added: {line}"
        else:
            assert line and words.lower() in line.lower(), (name, line)
    added = [name for name, words in expected.items() if words == "added"]
    assert f"{len(added)} added" in output
    peak_mb = int(output.rsplit("peak-kb", 1)[1].split()[0]) / 1024
    print(f"ingest of the hostile folder: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 1500, f"peak RSS {peak_mb:.0f} MB"  # a 100 MP photo is decoded at 1/8 scale
    check = (
        "from gallery.models import Image; from gallery import storage;"
        "print(sorted(Image.objects.values_list('original_name', flat=True)));"
        "print(len({p for _, p in storage.stored_files()}))"
    )
    names, files = manage(env, "shell", "-c", check).stdout.strip().splitlines()[-2:]
    assert names == str(sorted(added)) and int(files) == 3 * len(added)


def test_hostile_uploads_with_hostile_names(editor_client):
    files = [SimpleUploadedFile(name, data) for name, (data, _) in bad_files().items()]
    names = {
        "../../etc/passwd.jpg": "passwd.jpg",
        "a\x00b.jpg": "ab.jpg",
        "\u202egpj.exe": "gpj.exe",
        "x" * 300 + ".jpg": "x" * 251 + ".jpg",
    }
    for seed, name in enumerate(names):
        files.append(SimpleUploadedFile(name, photo_bytes(seed), content_type="image/jpeg"))
    response = editor_client.post(reverse("gallery:upload"), {"files": files}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    for name, (_, words) in bad_files().items():
        assert words.lower() in html.lower() or words in html, (name, words)
    stored = sorted(Image.objects.values_list("original_name", flat=True))
    assert stored == sorted(names.values())  # only the photos, under names fit to show
    assert len(stored_files()) == 3 * len(names)
    for image in Image.objects.all():  # paths come from the SHA-256, never from the name
        assert storage.original_path(image).resolve().is_relative_to(Path(storage.media_root()).resolve())


def test_hostile_uploads_through_the_api(editor, client):
    from imgsim_site.tokens import token_create

    _, key = token_create(user=editor, name="t")
    for name, (data, _) in bad_files().items():
        if not data:
            continue  # an empty upload is refused by Django's form parsing before us, as 400
        response = client.post(
            reverse("api:upload"),
            {"files": [SimpleUploadedFile(name, data)]},
            headers={"Authorization": f"Bearer {key}"},
        )
        body = response.json()
        assert response.status_code in (200, 400, 413, 415), (name, response.status_code)
        if "results" in body:  # a per-file answer (415 when the only file is not an image)
            assert body["results"][0]["status"] in ("failed", "not_image") and body["results"][0]["reason"], name
        else:
            assert response.status_code != 200 and body["error"], name
    assert Image.objects.count() == 0 and not stored_files()


def test_polyglot_is_only_ever_served_as_an_image(editor_client, tmp_path, ingest):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "polyglot.png").write_bytes(hostile_extras()["polyglot.png"][0])
    ingest(tmp_path / "in")
    image = Image.objects.get()
    response = editor_client.get(reverse("gallery:original", args=[image.pk]))
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert (
        "sandbox" in response["Content-Security-Policy"] and "default-src 'none'" in response["Content-Security-Policy"]
    )


def test_full_disk_fails_the_file_and_leaves_nothing(tmp_path, ingest, monkeypatch):
    write_library(tmp_path / "in", 2)
    real_replace = os.replace

    def disk_full(source, target):
        if "renditions" in str(target):
            os.unlink(source)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(storage.os, "replace", disk_full)
    report = ingest(tmp_path / "in")
    assert report.added == 0 and len(report.failed) == 2
    assert all("No space left on device" in outcome.reason for outcome in report.failed)
    assert not stored_files() and Image.objects.count() == 0
    leftovers = [p for p in Path(storage.media_root()).rglob("*") if p.is_file()]
    assert leftovers == []  # no temp files either


@SUBPROCESS_ONLY
@pytest.mark.slow
def test_kill_9_at_20_random_points_then_everything_exactly_once(tmp_path, tiny_model):
    env = project_env(tmp_path, tiny_model)
    folder = tmp_path / "in"
    write_library(folder, 300, size=(640, 480))
    manage(env, "migrate", "-v0")
    database = tmp_path / "data" / "imgsim.sqlite3"
    rng = random.Random(20)
    kills, done = 0, 0
    while kills < 20:
        # Every other run stores photos without the model (--no-embed, as when the model is missing):
        # both paths are killed mid-work, and the half without torch's start-up keeps the test quick.
        no_embed = ["--no-embed"] if kills % 2 else []
        process = subprocess.Popen(
            [sys.executable, "manage.py", "ingest", str(folder), "--batch-size", "8", "--no-progress", *no_embed],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Strike as soon as a few more photos are committed: the next batch is then being decoded,
        # embedded or written. Progress, not time, decides, so any machine gets 20 kills mid-work.
        reached = wait_for_count(
            env, "SELECT COUNT(*) FROM gallery_image", at_least=done + rng.randint(1, 8), process=process
        )
        if reached is None:
            break  # the folder was done first
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        with sqlite3.connect(database, timeout=30) as db:  # after every kill: the database is sound
            # integrity_check evaluates CHECK constraints; the sha256 one uses REGEXP, which Django provides.
            db.create_function(
                "REGEXP", 2, lambda pattern, value: value is not None and re.search(pattern, value) is not None
            )
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM gallery_image").fetchone()
            assert rows == distinct
            done = rows
    assert kills == 20 and done < 300, f"{kills} kills landed before the ingest finished ({done} photos)"
    manage(env, "ingest", str(folder), "--no-progress")
    manage(env, "reconcile")
    assert "consistent" in manage(env, "shell", "-c", library_consistency_check(300)).stdout
    assert "Nothing to fix." in manage(env, "reconcile").stdout
    print(f"{kills} kills, then every photo exactly once")
