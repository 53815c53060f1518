from django.core.management.base import BaseCommand

from search.reconcile import reindex


class Command(BaseCommand):
    help = (
        "Drop the vector index and rebuild it from the vectors stored in SQLite. No photo is decoded "
        "and no model is loaded: use it after losing or corrupting the Chroma folder."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    def handle(self, *, progress, **options):
        bar = None
        if progress:
            from tqdm import tqdm

            from gallery.models import Image

            total = Image.objects.live().filter(embedding_state=Image.Embedding.DONE).count()
            bar = tqdm(total=total, unit="vec", dynamic_ncols=True, file=self.stderr._out)
        count, seconds = reindex(on_progress=bar.update if bar is not None else None)
        if bar is not None:
            bar.close()
        self.stdout.write(self.style.SUCCESS(f"Indexed {count} vectors in {seconds:.1f} s."))
