from django.core.management import call_command
from django.core.management.base import BaseCommand

from search.tasks import catch_up


class Command(BaseCommand):
    help = (
        "Run the background worker (with IMGSIM_WORKER=true): computes embeddings for uploaded photos in "
        "batches, keeps the index in step and runs duplicate scans queued from the pages; retries with "
        "back-off while the model or the index is unavailable. On start it queues whatever a stopped "
        "worker left (it is safe to kill -9). Run one per deployment, as the compose file does: a worker's start "
        "takes whatever is marked running as abandoned."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls of an empty queue")
        parser.add_argument("--batch", action="store_true", help="process everything queued, then exit")

    def handle(self, *, interval, batch, **options):
        found = catch_up()
        self.stdout.write(
            f"Worker starting: {found['scans']} interrupted scan(s) queued again, "
            f"{found['abandoned_tasks']} abandoned task(s) closed"
            + (", index work queued." if found["index_work"] else ", nothing left over.")
        )
        self.stdout.flush()
        call_command(
            "db_worker",
            interval=interval,
            batch=batch,
            reload=False,
            startup_delay=False,
            verbosity=options["verbosity"],
        )
