from django.utils.crypto import get_random_string
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME
from django_tasks_db.management.commands import db_worker

from search import stopping
from search.tasks import catch_up


class Worker(db_worker.Worker):
    """django-tasks-db's worker, telling long tasks when a stop is asked for (search.stopping)."""

    def shutdown(self, signum, frame) -> None:
        stopping.requested.set()
        super().shutdown(signum, frame)  # exits now when idle, else after the running task returns


class Command(db_worker.Command):
    help = (
        "Run the background worker (with IMGSIM_WORKER=true): computes embeddings for uploaded photos in "
        "batches, keeps the index in step and runs duplicate scans queued from the pages; retries with "
        "back-off while the model or the index is unavailable. On start it queues whatever a stopped "
        "worker left (it is safe to kill -9). SIGTERM or Ctrl+C stops it within a few seconds: a running "
        "duplicate scan keeps a checkpoint and goes on from there at the next start. Run one per deployment, "
        "as the compose file does: a worker's start takes whatever is marked running as abandoned."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls of an empty queue")
        parser.add_argument("--batch", action="store_true", help="process everything queued, then exit")

    def handle(self, *, interval, batch, verbosity, **options):
        self.configure_logging(verbosity)
        found = catch_up()
        self.stdout.write(
            f"Worker starting: {found['scans']} interrupted scan(s) queued again, "
            f"{found['abandoned_tasks']} abandoned task(s) closed"
            + (", index work queued." if found["index_work"] else ", nothing left over.")
        )
        self.stdout.flush()
        worker = Worker(
            queue_names=[DEFAULT_TASK_QUEUE_NAME],
            interval=interval,
            batch=batch,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            startup_delay=False,
            max_tasks=None,
            worker_id=get_random_string(32),
            excluded_queue_names=[],
        )
        worker.configure_signals()
        worker.run()
