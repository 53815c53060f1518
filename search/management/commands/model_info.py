import json

from django.core.management.base import BaseCommand, CommandError

from search import paths
from search.embeddings import get_embedder
from search.errors import ModelUnavailable


class Command(BaseCommand):
    help = (
        "Show the embedding model and the numeric path each tower runs on this machine (fp32 or bfloat16), "
        "with the rates measured when IMGSIM_PRECISION=auto chose it. --measure forgets what was measured "
        "for this model here and measures again (a few seconds; longer where bfloat16 is emulated)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--measure", action="store_true", help="measure the paths again")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the record as JSON")

    def handle(self, *, measure, as_json, **options):
        embedder = get_embedder()
        if measure:
            paths.forget(embedder.model_name)
        try:
            chosen = embedder.paths
        except ModelUnavailable as error:
            raise CommandError(str(error)) from None
        except AttributeError:
            raise CommandError(f"{type(embedder).__name__} does not report numeric paths") from None
        if as_json:
            self.stdout.write(json.dumps(chosen, indent=2, sort_keys=True))
            return
        self.stdout.write(f"model:  {embedder.model_name} ({embedder.dimension}-d)")
        self.stdout.write(f"CPU:    {paths.cpu_model()}")
        self.stdout.write(f"chosen: image {chosen['image']}, text {chosen['text']} ({chosen['source']})")
        for tower, unit in (("image", "images/s"), ("text", "texts/s")):
            facts = chosen.get(f"{tower}_measured")
            if facts:
                rates = ", ".join(
                    f"{path} {rate:g} {unit} (cosine to fp32 {facts['cosine'][path]:.4f})"
                    for path, rate in facts["rates"].items()
                )
                self.stdout.write(f"{tower}:  {rates}")
        if "bf16_product_ratio" in chosen:
            ratio = chosen["bf16_product_ratio"]
            note = " (so the towers were not run in bfloat16)" if ratio >= paths.CLEARLY_SLOWER else ""
            self.stdout.write(f"a bfloat16 matrix product took {ratio:g}x the time of fp32 here{note}")
        if chosen.get("measured_at"):
            self.stdout.write(f"measured {chosen['measured_at']}; kept in {paths.cache_file()}")
