from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from gallery.hooks import not_searchable
from gallery.ingest import IngestError, Pipeline, discover
from gallery.planner import refresh_statistics
from imgsim_site.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Add the photos under PATH to the library. Known photos (same SHA-256) are skipped, so a "
        "re-run adds only what is new; files that are not supported images are reported and skipped. "
        "Supported: JPEG, PNG, WebP, GIF (first frame), TIFF, BMP, HEIC/HEIF, recognised by their bytes."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="folder (or single file) to ingest")
        parser.add_argument("--recursive", action="store_true", default=True, help="descend into sub-folders (default)")
        parser.add_argument("--no-recursive", dest="recursive", action="store_false", help="only the folder itself")
        parser.add_argument("--max-images", type=int, default=None, metavar="N", help="add at most N new photos")
        parser.add_argument(
            "--extensions",
            default="",
            metavar=".jpg,.png",
            help="only files with these extensions (default: all files)",
        )
        parser.add_argument("--category", default="", help="category for every added photo")
        parser.add_argument(
            "--tag", action="append", default=[], metavar="T", help="tag every added photo (repeatable)"
        )
        parser.add_argument(
            "--in-place",
            action="store_true",
            help="reference files where they are instead of copying them (NAS libraries)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=16,
            metavar="N",
            help="photos per model call and transaction (default 16: measured fastest on 2 cores)",
        )
        parser.add_argument(
            "--no-embed", action="store_true", help="store photos now, compute embeddings later (reconcile)"
        )
        parser.add_argument("--dry-run", action="store_true", help="report what would be added; change nothing")
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
        parser.add_argument(
            "--album",
            default="",
            metavar="NAME",
            help="put every photo of the run in this album (created if missing), those already in the library too",
        )
        parser.add_argument("--user", default="", help="record this username as the one who added the photos")

    def handle(
        self,
        *,
        path,
        recursive,
        max_images,
        extensions,
        category,
        tag,
        in_place,
        batch_size,
        no_embed,
        dry_run,
        progress,
        user,
        album,
        **options,
    ):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        wanted = {("." + ext.strip().lstrip(".")).lower() for ext in extensions.split(",") if ext.strip()} or None
        try:
            sources, skipped = discover(path, recursive=recursive, extensions=wanted)
        except IngestError as error:
            raise CommandError(str(error)) from None
        if max_images is not None and max_images < 1:
            raise CommandError("--max-images must be at least 1")
        if not sources and not skipped:
            raise CommandError(f"{path} holds no files to ingest")
        added_by = None
        if user:
            added_by = get_user_model().objects.filter(username=user).first()
            if added_by is None:
                raise CommandError(f"no user named {user!r}")
        pipeline = Pipeline(
            in_place=in_place,
            category=category,
            tags=tag,
            user=added_by,
            embed=not no_embed,
            dry_run=dry_run,
            batch_size=batch_size,
        )
        with progress_bar(self, enabled=progress, unit="file", total=len(sources)) as advance:
            report = pipeline.run(
                sources, on_progress=(lambda outcome: advance()) if advance else None, limit=max_images
            )
        report.outcomes[:0] = skipped
        self._summary(report, dry_run=dry_run)
        if album.strip() and not dry_run:
            self._into_album(album.strip(), report, added_by)
        if in_place and not dry_run:
            self._missing_under(Path(path).resolve())
        if not dry_run and any(outcome.image_id for outcome in report.outcomes):
            refresh_statistics()  # the library grew: the planner's picture of it too

    def _missing_under(self, folder) -> None:
        """In-place photos of this folder whose file is gone: hidden from search, listed with the fix."""
        from gallery.services import sources_check

        missing, back = sources_check(under=folder)
        if back:
            self.stdout.write(f"{back} photo(s) whose file was missing are back and searchable again.")
        if missing:
            self.stderr.write(
                self.style.WARNING(
                    f"{len(missing)} photo(s) ingested from {folder} have lost their file (hidden from search):\n"
                    + "\n".join(f"  {photo.file}" for photo in missing[:20])
                    + "\nPut them back, ingest the folder they moved to with --in-place, or trash the photos."
                )
            )

    def _into_album(self, name: str, report, user) -> None:
        from gallery.models import Album, Image
        from gallery.services import album_add, album_create

        known = [o.sha256 for o in report.outcomes if o.sha256]
        ids = [o.image_id for o in report.outcomes if o.image_id]
        photos = list(Image.objects.live().filter(Q(pk__in=ids) | Q(sha256__in=known)))
        chosen = Album.objects.filter(name__iexact=name).first() or album_create(name=name[:120], user=user)
        added = album_add(album=chosen, images=photos)
        self.stdout.write(f"Album “{chosen.name}”: {added} photo(s) added, {chosen.photos.count()} in all.")

    def _summary(self, report, *, dry_run):
        if dry_run:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Dry run: {report.count('would_add')} would be added, "
                    f"{report.known} already known; nothing was changed."
                )
            )
        else:
            timing = f"{report.seconds:.1f} s ({report.rate:.1f} images/s"
            if report.added and report.loading_seconds >= 0.1:
                # Only a model that loaded is said to have been loaded.
                what = "trying to load the model" if report.model_error else "loading the model"
                timing += f"; {report.working_rate:.1f} images/s after {report.loading_seconds:.1f} s {what}"
            self.stdout.write(
                self.style.SUCCESS(
                    f"{report.added} added, {report.known} already known, {len(report.not_images)} not images, "
                    f"{len(report.failed)} failed in {timing})"
                )
            )
            if report.model_error:
                self.stderr.write(self.style.WARNING(f"Embeddings stay pending: {report.model_error}"))
            pending = report.added - report.embedded
            if pending > 0:
                self.stdout.write(
                    f"{pending} photo(s) wait for embeddings: run `python manage.py reconcile` "
                    "once the model is available."
                )
            added = [outcome.image_id for outcome in report.outcomes if outcome.status == "added"]
            unindexed = not_searchable(added) - max(pending, 0)
            if unindexed > 0:
                self.stderr.write(
                    self.style.WARNING(
                        f"{unindexed} photo(s) are stored but not searchable yet: the search index could not be "
                        "updated. They are indexed as soon as it is reachable again (the worker, or "
                        "`python manage.py reconcile`)."
                    )
                )
        for outcome in report.not_images:
            self.stdout.write(f"  skipped {outcome.name}: {outcome.reason}")
        for outcome in report.failed:
            self.stderr.write(f"  failed  {outcome.name}: {outcome.reason}")
