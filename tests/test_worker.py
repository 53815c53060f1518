"""The background worker: uploads and scans are queued, the worker finishes them, and survives kill -9."""

import os
import signal
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from gallery.models import Image
from search import tasks
from search.models import DuplicateScan
from search.python_api import find_similar
from tests.conftest import ROOT
from tests.photos import photo_bytes, write_library
from tests.processes import manage, project_env, wait_for_count

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_mode(settings):
    settings.IMGSIM_WORKER = True
    settings.IMGSIM_EMBED_ON_COMMIT = False


def _upload(client, count: int, start: int = 0):
    files = [
        SimpleUploadedFile(f"u{i}.jpg", photo_bytes(i), content_type="image/jpeg") for i in range(start, start + count)
    ]
    return client.post(reverse("gallery:upload"), {"files": files}, headers={"HX-Request": "true"})


def test_upload_queues_the_model_work_and_the_task_does_it(worker_mode, editor_client):
    response = _upload(editor_client, 3)
    html = response.content.decode()
    assert response.status_code == 200 and html.count("added") >= 3
    assert 'hx-get="/queue/"' in html  # the page polls the worker's progress
    assert set(Image.objects.values_list("embedding_state", flat=True)) == {"pending"}
    queued = DBTaskResult.objects.ready().filter(task_path=tasks.index_work.module_path)
    assert queued.count() == 1  # one task for the whole upload, not one per photo
    assert "3 photos still wait" in editor_client.get(reverse("search:queue")).content.decode()

    summary = tasks.index_work.call()
    assert summary["embedded"] == 3 and summary["error"] == ""
    assert set(Image.objects.values_list("embedding_state", flat=True)) == {"done"}
    assert len(find_similar(query_text="photo", top_k=10)) == 3
    assert "All photos are indexed" in editor_client.get(reverse("search:queue")).content.decode()


def test_a_web_process_leaves_embedded_index_writes_to_the_worker(
    worker_mode, editor_client, ingest, tmp_path, monkeypatch
):
    """Any write to an embedded Chroma loads its whole graph into the writer (2.6 GB at a million photos):
    with a worker, gunicorn's processes leave even an edit's index write to it."""
    from imgsim_site import heap
    from search.embeddings import model_name
    from search.index import ChromaIndex, get_index
    from search.models import IndexOutbox

    write_library(tmp_path / "in", 2)
    ingest(tmp_path / "in")  # a command writes its own
    photo = Image.objects.order_by("pk").first()
    monkeypatch.setattr(heap, "_settled", {"start"})  # gunicorn's post_worker_init marked this process
    opened = ChromaIndex.client
    monkeypatch.setattr(ChromaIndex, "client", lambda self: pytest.fail("the web process opened the embedded index"))
    edit = {"title": "Boats at dawn", "category": "harbour"}
    saved = editor_client.post(reverse("gallery:edit", args=[photo.pk]), edit, HTTP_HX_REQUEST="true")
    assert saved.status_code == 200 and "Boats at dawn" in saved.content.decode()
    assert list(IndexOutbox.objects.values_list("image_id", flat=True)) == [photo.pk]
    assert DBTaskResult.objects.ready().filter(task_path=tasks.index_work.module_path).count() == 1

    monkeypatch.setattr(heap, "_settled", set())  # the worker
    monkeypatch.setattr(ChromaIndex, "client", opened)
    assert tasks.index_work.call()["upserted"] == 1
    assert not IndexOutbox.objects.exists()
    entry = get_index().collection(model_name()).get(ids=[str(photo.pk)], include=["metadatas"])
    assert entry["metadatas"][0]["category"] == "harbour"


def test_missing_model_means_a_retry_with_back_off(worker_mode, editor_client, settings):
    _upload(editor_client, 1)
    settings.IMGSIM_EMBEDDER = {
        **settings.IMGSIM_EMBEDDER,
        "OPTIONS": {**settings.IMGSIM_EMBEDDER["OPTIONS"], "model": str(settings.MEDIA_ROOT / "no-such-model")},
    }
    from search.embeddings import get_embedder

    get_embedder.cache_clear()
    DBTaskResult.objects.all().delete()
    summary = tasks.index_work.call(attempt=2)
    assert summary["error"]
    retry = DBTaskResult.objects.get(task_path=tasks.index_work.module_path)
    assert retry.args_kwargs["kwargs"] == {"attempt": 3}
    delay = (retry.run_after - retry.enqueued_at).total_seconds()
    assert tasks.backoff(3) - 2 <= delay <= tasks.backoff(3) + 2  # 20 s
    assert Image.objects.get().embedding_state == "pending"  # nothing lost meanwhile


def test_scan_now_is_queued_for_the_worker(worker_mode, editor_client, ingest, tmp_path):
    write_library(tmp_path / "in", 3)
    ingest(tmp_path / "in")
    response = editor_client.post(reverse("search:duplicates_scan"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    scan = DuplicateScan.objects.get()
    assert scan.status == "running" and scan.progress == 0  # waiting for the worker, not run in the request
    task = DBTaskResult.objects.ready().get(task_path=tasks.duplicate_scan.module_path)
    assert task.args_kwargs["kwargs"] == {"scan_id": scan.pk}
    tasks.duplicate_scan.call(scan_id=scan.pk)
    scan.refresh_from_db()
    assert scan.status == "done"


@pytest.mark.slow
def test_worker_process_survives_kill_9(tmp_path, tiny_model):
    """A worker killed mid-batch: on restart every waiting photo is embedded and reconcile finds nothing."""
    env = project_env(tmp_path, tiny_model)
    env["IMGSIM_WORKER"] = "true"
    manage(env, "migrate", "-v0")
    write_library(tmp_path / "in", 40)
    # Photos stored without embeddings and queued, as an upload does with a worker.
    manage(
        env,
        "shell",
        "-c",
        (
            "from pathlib import Path; from gallery.ingest import Pipeline, discover; from search.tasks import "
            "request_index_work; from django.db import transaction\n"
            f"s, _ = discover(Path({str(tmp_path / 'in')!r}), recursive=True)\n"
            "Pipeline(embed=False).run(s)\n"
            "with transaction.atomic(): request_index_work()"
        ),
    )
    count = "from gallery.models import Image; print(Image.objects.filter(embedding_state='done').count())"
    assert manage(env, "shell", "-c", count).stdout.split()[-1] == "0"

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # Kill once part of the work is done (the worker embeds in batches of 16 of the 40).
    done = wait_for_count(
        env, "SELECT COUNT(*) FROM gallery_image WHERE embedding_state = 'done'", at_least=1, process=worker
    )
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert done is not None and done < 40, "the kill must land mid-work"
    restarted = subprocess.run(
        [sys.executable, "manage.py", "worker", "--batch"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "Worker starting" in restarted.stdout
    assert manage(env, "shell", "-c", count).stdout.split()[-1] == "40"
    assert "Nothing to fix." in manage(env, "reconcile").stdout


def test_workers_starting_keep_exactly_one_chain_of_index_checks(worker_mode):
    def queued_checks() -> int:
        return DBTaskResult.objects.ready().filter(task_path=tasks.check_index.module_path).count()

    for _ in range(3):  # three workers start (or one restarts three times)
        tasks.catch_up()
    assert queued_checks() == 1
    tasks.check_index.call(repeat=True)  # a check of the chain runs while the next one is queued
    assert queued_checks() == 1


SCAN_SETUP = """
from bench.common import synthetic_library
from search.duplicates import start_scan
from search.embeddings import get_embedder
from search.reconcile import reindex
embedder = get_embedder()
synthetic_library(4000, dimension=embedder.dimension, model=embedder.model_name)
reindex()
start_scan(similarity_threshold=0.7, background=True)
"""

SCAN_MATCHES_A_FRESH_ONE = """
from search.duplicates import find_pairs
from search.models import DuplicatePair, DuplicateScan
scan = DuplicateScan.objects.get()
got = set(DuplicatePair.objects.values_list("image_a_id", "image_b_id"))
want = {(p.a, p.b) for p in find_pairs(similarity_threshold=0.7)}
assert scan.status == "done" and scan.checkpoint is None, (scan.status, scan.error)
assert got == want and len(want) > 100, (len(got), len(want))
print("same pairs", len(want))
"""


@pytest.mark.slow
def test_sigterm_stops_a_scan_at_a_checkpoint_and_the_next_worker_finishes_it(tmp_path, tiny_model):
    """docker stop sends SIGTERM and kills 10 s later: the worker must not wait for a long scan to end."""
    env = project_env(tmp_path, tiny_model)
    env.update(IMGSIM_WORKER="true", IMGSIM_DUPLICATE_BLOCK="4")  # many small blocks: a scan of some seconds
    manage(env, "migrate", "-v0")
    manage(env, "shell", "-c", SCAN_SETUP)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = wait_for_count(
        env, "SELECT CAST(progress * 100 AS INTEGER) FROM search_duplicatescan", at_least=5, process=worker
    )
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=120)
    assert started is not None, output
    assert worker.returncode == 0, output  # a graceful stop, not the second-signal exit
    state = (
        "from search.models import DuplicateScan; s = DuplicateScan.objects.get();"
        "print(s.status, s.checkpoint and s.checkpoint['next_id'], s.progress)"
    )
    status, next_id, progress = manage(env, "shell", "-c", state).stdout.split()[-3:]
    assert status == "running" and next_id != "None", "the scan stopped at a checkpoint instead of running to its end"
    assert float(progress) < 0.95

    restarted = subprocess.run(
        [sys.executable, "manage.py", "worker", "--batch"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "1 interrupted scan(s) queued again" in restarted.stdout
    assert "same pairs" in manage(env, "shell", "-c", SCAN_MATCHES_A_FRESH_ONE).stdout
