import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from search import model_families
from search.errors import ModelUnavailable


class Command(BaseCommand):
    help = (
        "Download the embedding model (IMGSIM_MODEL, default openai/clip-vit-base-patch32; any supported "
        "family: CLIP, SigLIP, sentence-transformers clip-ViT-B-32 and clip-ViT-B-32-multilingual-v1 with "
        "its image tower) into the Hugging Face cache (HF_HOME), or with --to into a folder you can copy "
        "to an offline machine and name in IMGSIM_MODEL. The model is loaded once to check it works."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", default=None, help="model id (default: IMGSIM_MODEL)")
        parser.add_argument("--to", default=None, help="save a self-contained copy into this folder")

    def handle(self, *, model, to, **options):
        name = model_families.resolve(model or settings.IMGSIM_MODEL)
        if model_families.is_local(name):
            raise CommandError(f"{name} is a local folder: there is nothing to download. Name a hub id instead.")
        image_model = settings.IMGSIM_EMBEDDER.get("OPTIONS", {}).get("image_model") or (
            model_families.PAIRED_IMAGE_MODELS.get(name, "")
        )
        try:
            folder = model_families.local_folder(name)
            image_folder = model_families.local_folder(image_model) if model_families.is_text_only(folder) else None
            if to:
                target = Path(to)
                shutil.copytree(folder, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".cache"))
                if image_folder:
                    shutil.copytree(image_folder, target / "image-model", dirs_exist_ok=True)
                towers = model_families.load(
                    str(target), image_model=str(target / "image-model") if image_folder else ""
                )
            else:
                towers = model_families.load(name, image_model=image_model)
        except ModelUnavailable as error:
            raise CommandError(str(error)) from None
        what = f"{name} ({towers.family}, {towers.dimension}-d)"
        if to:
            pair = f" IMGSIM_IMAGE_MODEL={Path(to) / 'image-model'}" if image_folder else ""
            self.stdout.write(self.style.SUCCESS(f"Saved {what} to {to}. Set IMGSIM_MODEL={to}{pair}"))
        else:
            self.stdout.write(self.style.SUCCESS(f"{what} is in the Hugging Face cache ({folder})."))
