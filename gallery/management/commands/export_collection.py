from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from gallery.collection import export_collection
from gallery.models import Image
from imgsim_site.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Write the whole library (trash included) to OUT: every photo's facts, metadata, tags, SHA-256, "
        "file reference and embedding, as versioned JSON (gzip-compressed when OUT ends in .gz). With "
        "--with-files OUT is a zip that also holds the originals and renditions: a full backup, or a move "
        "to another server. Read it back with import_collection. The file appears only when complete."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path, help="output file: .json, .json.gz, or .zip with --with-files")
        parser.add_argument("--with-files", action="store_true", help="bundle originals and renditions in a zip")
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    def handle(self, *, out, with_files, progress, **options):
        if with_files and out.suffix != ".zip":
            raise CommandError("--with-files writes a zip: name the output something.zip")
        if not with_files and out.suffix == ".zip":
            raise CommandError("a .zip output needs --with-files (or name it .json / .json.gz)")
        try:
            with progress_bar(self, enabled=progress, unit="photo", total=Image.objects.count()) as advance:
                report = export_collection(out, with_files=with_files, on_record=advance)
        except OSError as error:
            raise CommandError(f"cannot write {out}: {error.strerror or error}") from None
        files = f" and {report.files} files" if with_files else ""
        self.stdout.write(self.style.SUCCESS(f"Exported {report.count} photos{files} to {out}."))
        for path in report.missing:
            self.stderr.write(self.style.WARNING(f"  left out (original not found): {path}"))
