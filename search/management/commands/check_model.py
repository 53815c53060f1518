import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from search import model_check, paths
from search.embeddings import get_embedder
from search.errors import ModelUnavailable


class Command(BaseCommand):
    help = (
        "Check that a faster numeric path (default int8) finds what fp32 finds, on a sample of your own "
        "library: mean cosine to fp32 per tower and recall@10 agreement of image->image and text->image "
        f"queries. int8 passes when both agreements are at least {model_check.MIN_RECALL}; the verdict is "
        "kept in the data dir, and with IMGSIM_ALLOW_INT8=1 (or IMGSIM_PRECISION=int8) a passing int8 is "
        "used from the next start. Exits with status 1 when the path does not pass."
    )

    def add_arguments(self, parser):
        parser.add_argument("--path", default="int8", choices=["int8", "onnx", "bf16"], help="the path to check")
        parser.add_argument("--against", default="fp32", choices=["fp32"], help="the reference path")
        parser.add_argument("--sample", type=int, default=200, help="photos to encode on both paths (default 200)")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the figures as JSON")

    def handle(self, *, path, against, sample, as_json, **options):
        if sample < model_check.MIN_SAMPLE:
            raise CommandError(f"--sample must be at least {model_check.MIN_SAMPLE}")
        embedder = get_embedder()
        if not hasattr(embedder, "runner"):
            raise CommandError(f"{type(embedder).__name__} has no numeric paths to compare")
        with tqdm(total=sample, desc="reading photos", unit="photo", disable=as_json) as bar:

            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)

            try:
                figures = model_check.compare(embedder, path=path, against=against, sample=sample, progress=progress)
            except (ModelUnavailable, model_check.NotEnoughPhotos) as error:
                raise CommandError(str(error)) from None
        if path == "int8":
            paths.remember_int8_check(embedder.model_name, figures)
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2, sort_keys=True))
        else:
            self._report(figures, embedder.model_name)
        if not figures["passed"]:
            raise CommandError(
                f"{path} does not pass: recall@10 agreement below {model_check.MIN_RECALL}. "
                + ("imgsim will not use int8 for this model." if path == "int8" else "")
            )

    def _report(self, figures, model_name):
        path, against = figures["path"], figures["against"]
        self.stdout.write(f"model:   {model_name} on {paths.cpu_model()}")
        self.stdout.write(f"sample:  {figures['photos']} photos, {figures['texts']} texts, top {figures['k']}")
        self.stdout.write(
            f"cosine to {against}: images {figures['image_cosine']:.4f}, texts {figures['text_cosine']:.4f}"
        )
        self.stdout.write(
            f"recall@{figures['k']} agreement with {against}: image->image {figures['image_to_image_recall']:.3f}, "
            f"text->image {figures['text_to_image_recall']:.3f} (bar {figures['min_recall']})"
        )
        if figures["passed"]:
            note = " Set IMGSIM_ALLOW_INT8=1 to let auto choose it where it is fastest." if path == "int8" else ""
            self.stdout.write(self.style.SUCCESS(f"{path} passes.{note}"))
