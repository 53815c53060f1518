from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from gallery.collection import ImportRefused, import_collection
from imgsim_site.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Add the photos of a collection written by export_collection (.json, .json.gz or a --with-files "
        ".zip). The whole input is checked first; a bad file changes nothing and is refused with the "
        "reason. Photos already in the library (same SHA-256) are kept as they are, so an interrupted "
        "import simply runs again. Vectors are reused when their model is the one configured here; "
        "otherwise the photos are embedded again."
    )

    def add_arguments(self, parser):
        parser.add_argument("input", type=Path, help="a file written by export_collection")
        parser.add_argument(
            "--collection",
            default="",
            metavar="NAME",
            help="also tag every imported photo NAME, to keep the import findable as a group",
        )
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    def handle(self, *, input, collection, progress, **options):
        try:
            with progress_bar(self, enabled=progress, unit="photo") as advance:
                report = import_collection(input, collection=collection, on_record=advance)
        except ImportRefused as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.added} added ({report.vectors_imported} with their vectors, {report.renditions_made} "
                f"renditions made), {report.known} already in the library, {len(report.failed)} failed."
            )
        )
        if report.to_embed:
            self.stdout.write(
                f"{report.to_embed} photo(s) wait for embeddings: run `python manage.py reconcile` "
                "once the model is available."
            )
        for sha, reason in report.failed:
            self.stderr.write(f"  failed {sha[:12]}: {reason}")
