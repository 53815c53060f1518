from django.conf import settings
from django.core.management.base import BaseCommand

from gallery.services import trash_purge


class Command(BaseCommand):
    help = (
        "Delete for good the photos that have been in the trash longer than IMGSIM_TRASH_DAYS "
        "(default 30): their files, rows and vectors. --days 0 empties the whole trash."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help=f"default: {settings.IMGSIM_TRASH_DAYS}")

    def handle(self, *, days, **options):
        count = trash_purge(older_than_days=days)
        self.stdout.write(self.style.SUCCESS(f"Deleted {count} photo(s) from the trash."))
