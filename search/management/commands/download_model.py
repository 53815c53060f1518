from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Download the embedding model (IMGSIM_MODEL, default openai/clip-vit-base-patch32) into the "
        "Hugging Face cache (HF_HOME), or with --to into a folder you can copy to an offline machine "
        "and name in IMGSIM_MODEL."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", default=None, help="model id (default: IMGSIM_MODEL)")
        parser.add_argument("--to", default=None, help="save a self-contained copy into this folder")

    def handle(self, *, model, to, **options):
        from transformers import AutoTokenizer, CLIPModel

        from search.embeddings import ClipEmbedder

        model = model or settings.IMGSIM_MODEL
        try:
            loaded = CLIPModel.from_pretrained(model)
            tokenizer = AutoTokenizer.from_pretrained(model)
            ClipEmbedder._preprocessing(model, loaded.config.vision_config.image_size)
        except OSError as error:
            raise CommandError(f"Cannot download {model}: {error}") from None
        if to:
            loaded.save_pretrained(to)
            tokenizer.save_pretrained(to)
            try:
                from transformers import CLIPImageProcessor

                CLIPImageProcessor.from_pretrained(model).save_pretrained(to)
            except OSError:
                pass
            self.stdout.write(self.style.SUCCESS(f"Saved {model} to {to}. Set IMGSIM_MODEL={to}"))
        else:
            self.stdout.write(self.style.SUCCESS(f"{model} is in the Hugging Face cache."))
