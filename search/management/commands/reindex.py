from django.core.management.base import BaseCommand

from gallery.models import Image
from imgsim_site.progress import progress_bar
from search.reconcile import reindex


class Command(BaseCommand):
    help = (
        "Drop the vector index and rebuild it from the vectors stored in SQLite. No photo is decoded "
        "and no model is loaded: use it after losing or corrupting the Chroma folder."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    def handle(self, *, progress, **options):
        total = Image.objects.live().filter(embedding_state=Image.Embedding.DONE).count() if progress else None
        with progress_bar(self, enabled=progress, unit="vec", total=total) as advance:
            count, seconds = reindex(on_progress=advance)
        self.stdout.write(self.style.SUCCESS(f"Indexed {count} vectors in {seconds:.1f} s."))
