import json

from django.core.management.base import BaseCommand, CommandError

from gallery import storage
from search.errors import USER_ERRORS, ModelUnavailable
from search.python_api import find_similar


class Command(BaseCommand):
    help = (
        'Search the library from the shell: `search "red car at night"`, or by a photo with --image PATH. '
        "Prints similarity and file per result, best first (--json for the full records). "
        'Filters use the filter language of the API: --filter \'{"category": "travel", "year": {"$gte": 2020}}\'.'
    )

    def add_arguments(self, parser):
        parser.add_argument("query", nargs="?", default=None, help="what the photos show, in words")
        parser.add_argument("--image", default=None, help="find photos like this image file")
        parser.add_argument("--filter", default=None, help="metadata filter as JSON")
        parser.add_argument("--top-k", type=int, default=10, help="number of results (default 10)")
        parser.add_argument("--threshold", type=float, default=None, help="minimum similarity, -1 to 1")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the results as JSON")

    def handle(self, *, query, image, filter, top_k, threshold, as_json, **options):
        if not query and not image:
            raise CommandError('Give a text query ("red car") or --image PATH.')
        try:
            where = json.loads(filter) if filter else None
        except ValueError as error:
            raise CommandError(f"--filter is not valid JSON: {error}") from None
        try:
            results = find_similar(
                query_text=query or None,
                query_image_path=image,
                top_k=top_k,
                threshold=threshold,
                filter_metadata=where,
            )
        except (ModelUnavailable, *USER_ERRORS) as error:
            raise CommandError(str(error)) from None
        if as_json:
            self.stdout.write(json.dumps(results, indent=2, default=str))
            return
        if not results:
            self.stdout.write("No photos match.")
        for result in results:
            self.stdout.write(f"{result['similarity']:.3f}  {self._file(result)}  (id {result['id']})")

    @staticmethod
    def _file(result: dict) -> str:
        """Where the photo is on disk: its own file for an --in-place library, else the stored original."""
        if result["source_path"]:
            return result["source_path"]
        return str(storage.media_root() / storage.original_relpath(result["sha256"], result["format"]))
