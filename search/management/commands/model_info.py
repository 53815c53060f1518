import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gallery import vector_file
from search import paths
from search.embeddings import get_embedder
from search.errors import ModelUnavailable


class Command(BaseCommand):
    help = (
        "Show the embedding model, its family, and the numeric path each tower runs on this machine "
        "(torch fp32 or bfloat16, ONNX Runtime fp32 or int8, fp16 on a GPU), with the rates measured when "
        "IMGSIM_PRECISION=auto chose it and the last int8 check. --measure forgets what was measured for "
        "this model here and measures again (seconds; the first ONNX export of a full-size model adds ~15 s)."
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
        self.stdout.write(f"model:  {embedder.model_name} ({chosen['family']}, {embedder.dimension}-d)")
        self.stdout.write(
            f"device: {chosen['device']}" + ("" if chosen["device"] != "cpu" else f" ({paths.cpu_model()})")
        )
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
        check = paths.int8_check(embedder.model_name)
        if check:
            verdict = "passed" if check["passed"] else "refused"
            self.stdout.write(
                f"int8 check: {verdict} (recall@10 agreement image->image {check['image_to_image_recall']:.3f}, "
                f"text->image {check['text_to_image_recall']:.3f} on {check['photos']} photos)"
            )
        else:
            self.stdout.write("int8 check: not run (manage.py check_model; int8 is used only after it passes)")
        chosen_pass, measured = paths.search_pass(), paths.search_pass_record()
        if getattr(settings, "IMGSIM_SEARCH_PASS", "auto") != "auto" or measured is None:
            detail = "IMGSIM_SEARCH_PASS"
        else:
            timed = [f"{name} {measured['ms'][name]:g} ms" for name in paths.SEARCH_PASSES if name in measured["ms"]]
            detail = "measured over 131,072 vectors: " + ", ".join(timed)
        self.stdout.write(f"search's pass over every vector: {chosen_pass} ({detail})")
        kernel = vector_file.int4_kernel()
        self.stdout.write(
            f"int4 kernel: {kernel} (gallery/int4.c, the faster here of those this CPU runs)"
            if kernel
            else "int4 kernel: not compiled (install gcc, then run the setup again): int4 reads the int8 twin"
        )
