"""Background work for the worker process (`manage.py worker`), queued with django-tasks.

With IMGSIM_WORKER=true, requests do no model work: an upload stores its photos and
their renditions, and what still needs a vector is queued here; "scan now" queues a
duplicate scan. The queue rows only say "there is work"; the work itself is always
found in SQLite (photos waiting for embeddings, outbox rows, scans marked running),
so a worker killed mid-batch loses nothing: on start it queues a catch-up.

django-tasks is the backport of Django 6's `django.tasks`; the database backend
(django-tasks-db) needs no server beside the database.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from gallery.models import Image
from search.models import IndexOutbox
from search.stopping import stop_requested

log = logging.getLogger(__name__)

BATCH = 16  # photos per model call and commit, as in ingest
# Seconds before retry n (1, 2, ...): 5, 10, 20, 40, then every minute.
# Capped at a minute so that work waiting for an index (or a model) that is back is done
# within a minute, not at the next of ever longer waits; 70 tries cover about an hour.
BACKOFF_BASE, BACKOFF_MAX = 5, 60
MAX_ATTEMPTS = 70
CHECK_MINUTES = 10


def backoff(attempt: int) -> int:
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))


def waiting_ids(limit: int) -> list[int]:
    return list(Image.objects.waiting_for_embedding().order_by("pk").values_list("pk", flat=True)[:limit])


@task()
def index_work(attempt: int = 0) -> dict:
    """Embed waiting photos and bring the index in step, in batches; retry with back-off when stuck."""
    from search.sync import merge_into, process_outbox, sync_images

    total = process_outbox(batch_size=BATCH, embed=True)
    while not total.model_error and not stop_requested():  # a stopping worker leaves the rest for its next start
        ids = waiting_ids(BATCH)
        if not ids:
            break
        report = sync_images(ids, embed=True)
        merge_into(total, report)
        if not report.embedded and not report.failed:
            break  # nothing moved: do not spin
    summary = {
        "embedded": total.embedded,
        "failed": len(total.failed),
        "upserted": total.upserted,
        "deleted": total.deleted,
        "error": total.model_error,
    }
    if stop_requested():
        summary["stopped"] = True  # catch_up() queues the rest when a worker starts
    elif total.model_error or waiting_ids(1) or IndexOutbox.objects.exists():
        if attempt + 1 >= MAX_ATTEMPTS:
            log.error("index work still stuck after %d attempts (%s); run reconcile", attempt + 1, total.model_error)
        else:
            delay = backoff(attempt + 1)
            log.warning(
                "index work incomplete (%s); retry %d in %d s", total.model_error or "photos left", attempt + 1, delay
            )
            index_work.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(attempt=attempt + 1)
    return summary


@task()
def duplicate_scan(scan_id: int) -> dict:
    """Run a scan recorded by the duplicates page."""
    from search.duplicates import run_scan
    from search.models import DuplicateScan

    scan = DuplicateScan.objects.filter(pk=scan_id, status=DuplicateScan.Status.RUNNING).first()
    if scan is None:
        return {"skipped": scan_id}
    scan = run_scan(scan)
    return {"scan": scan.pk, "status": scan.status, "pairs": scan.pairs}


@task()
def check_index(repeat: bool = True) -> dict:
    """Repair the index when its size differs from SQLite's (e.g. a Chroma server that lost writes in a crash).

    Runs when a worker starts and then every CHECK_MINUTES: a cheap count
    comparison, and a full reconcile only when the counts differ.
    """
    from search.embeddings import model_name
    from search.reconcile import reconcile
    from search.sync import indexable, reading_index

    expected = indexable().count()
    try:
        with reading_index() as index:
            actual = index.count(model_name())
    except Exception as error:  # the index is down: try again at the next check
        actual, summary = None, {"error": str(error)}
    else:
        summary = {"expected": expected, "actual": actual}
        if actual != expected:
            result = reconcile(embed=True, delete_orphan_files=False)
            summary["repaired"] = result.lines()
            log.warning("index held %s vectors where SQLite has %s: %s", actual, expected, "; ".join(result.lines()))
    if repeat and not _periodic_check_queued():  # one chain of periodic checks, however many workers started
        check_index.using(run_after=timezone.now() + timedelta(minutes=CHECK_MINUTES)).enqueue(repeat=True)
    return summary


def _periodic_check_queued() -> bool:
    from django_tasks_db.models import DBTaskResult

    return (
        DBTaskResult.objects.ready()
        .filter(task_path=check_index.module_path, args_kwargs__kwargs__repeat=True)
        .exists()
    )


RETRY_FIRST, RETRY_MAX = 2, 60  # seconds: the first wait, the longest


def retry_outbox_soon() -> None:
    """Retry the outbox after an index write failed: in the worker if there is one, else on a thread here.

    Waits 2, 4, 8 ... up to 60 s between attempts, so writes made while Chroma was
    down reach search seconds after it is back, not at the next periodic check.
    """
    if settings.IMGSIM_WORKER:
        request_index_work()
        return
    from gallery import background

    if not settings.IMGSIM_INDEX_RETRY_SECONDS or "outbox-retry" in background.running():
        return  # switched off, or one retrying thread per process is enough
    background.start("outbox-retry", _retry_outbox)


def _retry_outbox() -> None:
    import time

    from search.sync import embed_on_commit, process_outbox

    delay, waited = RETRY_FIRST, 0
    while waited < settings.IMGSIM_INDEX_RETRY_SECONDS and IndexOutbox.objects.exists():
        time.sleep(delay)  # a back-off between attempts, not a wait for a condition
        waited += delay
        try:
            process_outbox(embed=embed_on_commit())
        except Exception as error:  # still down: wait longer
            log.info("the index is still unavailable (%s); next try in %d s", error, min(delay * 2, RETRY_MAX))
            delay = min(delay * 2, RETRY_MAX)


def embed_waiting_at_start() -> bool:
    """Without a worker, a starting web process computes the embeddings still waiting, on a thread.

    Photos ingested while the model was missing (no network, a wrong IMGSIM_MODEL) stay
    waiting until something computes them; the first web process does, once the model
    is there. Returns whether it started.
    """
    from search.sync import embed_on_commit

    if settings.IMGSIM_WORKER or not embed_on_commit() or not waiting_ids(1):
        return False
    from gallery import background

    count = Image.objects.waiting_for_embedding().count()
    log.info("computing the embeddings of %d waiting photo(s) in the background", count)
    background.start("embed-waiting", _embed_waiting)
    return True


def _embed_waiting() -> None:
    from search.sync import sync_images

    while ids := waiting_ids(BATCH):
        report = sync_images(ids, embed=True)
        if report.model_error:
            log.warning("waiting photos stay waiting: %s", report.model_error)
            return
        if not report.embedded and not report.failed:
            return  # nothing moved: do not spin


def request_index_work() -> None:
    """Queue index work once the current transaction commits, unless some is queued already."""
    if not settings.IMGSIM_WORKER:
        return

    def enqueue() -> None:
        from django_tasks_db.models import DBTaskResult

        if not DBTaskResult.objects.ready().filter(task_path=index_work.module_path).exists():
            index_work.enqueue()

    transaction.on_commit(enqueue)


def request_index_check() -> None:
    """Queue a one-off index check and repair now, unless one is queued already."""
    from django_tasks_db.models import DBTaskResult

    if (
        not DBTaskResult.objects.ready()
        .filter(task_path=check_index.module_path, args_kwargs__kwargs__repeat=False)
        .exists()
    ):
        check_index.enqueue(repeat=False)


def catch_up() -> dict:
    """Queue whatever a stopped worker left (waiting photos, outbox rows, interrupted scans) and an index check."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from search.models import DuplicateScan

    # A worker killed mid-task leaves its row RUNNING for ever; the work itself is found again below.
    abandoned = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).update(
        status=TaskResultStatus.FAILED, finished_at=timezone.now()
    )
    scans = list(DuplicateScan.objects.filter(status=DuplicateScan.Status.RUNNING).values_list("pk", flat=True))
    queued = set(
        DBTaskResult.objects.ready()
        .filter(task_path=duplicate_scan.module_path)
        .values_list("args_kwargs__kwargs__scan_id", flat=True)
    )
    for scan_id in scans:
        if scan_id not in queued:  # a stopped worker's scan goes on from its checkpoint
            duplicate_scan.enqueue(scan_id=scan_id)
    # One periodic index check at a time: the new worker starts the chain unless one is queued.
    if not _periodic_check_queued():
        check_index.enqueue(repeat=True)
    waiting, outbox = len(waiting_ids(1)), IndexOutbox.objects.exists()
    if waiting or outbox:
        index_work.enqueue()
    return {"abandoned_tasks": abandoned, "scans": len(scans), "index_work": bool(waiting or outbox)}
