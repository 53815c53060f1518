from django.core.management.base import BaseCommand

from gallery.models import Image
from imgsim_site.progress import progress_bar
from search.reconcile import reindex


class Command(BaseCommand):
    help = (
        "Rebuild the vector index from the vectors stored in SQLite. No photo is decoded and no model "
        "is loaded: use it after losing or corrupting the Chroma folder. The old index serves until the "
        "new one is complete, and a reindex that was stopped goes on from where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
        parser.add_argument(
            "--restart", action="store_true", help="discard what a stopped reindex wrote and start from the beginning"
        )

    def handle(self, *, progress, restart, **options):
        total = Image.objects.live().filter(embedding_state=Image.Embedding.DONE).count() if progress else None
        with progress_bar(self, enabled=progress, unit="vec", total=total) as advance:
            rebuilt = reindex(on_progress=advance, restart=restart)
        if rebuilt.resumed:
            self.stdout.write(f"Went on from a stopped reindex that had written {rebuilt.resumed} vectors.")
        self.stdout.write(self.style.SUCCESS(f"Indexed {rebuilt.count} vectors in {rebuilt.seconds:.1f} s."))
