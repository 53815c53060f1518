from django.core.management.base import BaseCommand

from search.reconcile import reconcile


class Command(BaseCommand):
    help = (
        "Find and fix every difference between SQLite (the source of truth) and the vector index: "
        "pending or interrupted index work, photos still waiting for embeddings, vectors missing from "
        "Chroma, vectors of deleted or trashed photos, stale metadata, and files in storage that no "
        "photo owns. An entry's metadata is checked against the record of what was written to the index; "
        "--deep reads every entry back instead (after restoring the index from a backup). "
        "Prints what it did; a second run finds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-embed", action="store_true", help="do not compute missing embeddings")
        parser.add_argument("--retry-failed", action="store_true", help="try photos whose embedding failed again")
        parser.add_argument(
            "--keep-orphan-files", action="store_true", help="report orphan files but do not delete them"
        )
        parser.add_argument(
            "--deep",
            action="store_true",
            help="read every index entry back and compare it (slower: ~50 s more at a million photos)",
        )

    def handle(self, *, no_embed, retry_failed, keep_orphan_files, deep, **options):
        result = reconcile(
            embed=not no_embed, retry_failed=retry_failed, delete_orphan_files=not keep_orphan_files, deep=deep
        )
        for line in result.lines():
            self.stdout.write(line)
        if result.model_error:
            self.stderr.write(self.style.WARNING(result.model_error))
        self.stdout.write(self.style.SUCCESS("Nothing to fix." if result.clean else "Done."))
