"""The embedding model: CLIP through transformers, one instance per process.

torch and transformers are imported on first use, so `migrate`, the admin and the
gallery never pay for them. Vectors are L2-normalised float32.
"""

import functools
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from search.errors import ModelUnavailable
from search.paths import choose

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 60

# CLIP's own preprocessing constants, used when a model folder has no preprocessor config.
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Embedder:
    """What the rest of imgsim needs from an embedding model."""

    model_name: str
    input_size: int

    def preprocess(self, image) -> np.ndarray:
        raise NotImplementedError

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode_images(self, images: list) -> np.ndarray:
        """Encode PIL images; return an (n, dim) float32 array of unit vectors."""
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.encode_pixels(np.stack([self.preprocess(image) for image in images]))

    @property
    def dimension(self) -> int:
        raise NotImplementedError

    @property
    def loaded(self) -> bool:
        return False


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class ClipEmbedder(Embedder):
    """A CLIP-family model loaded with transformers from a hub id or a local folder."""

    def __init__(self, *, model: str, precision: str = "auto", batch_size: int = 32, threads: int = 0):
        self.model_name = model
        self.precision_setting = precision
        self.batch_size = batch_size
        self.threads = threads
        self._lock = threading.Lock()
        self._inference_lock = threading.Lock()
        self._loaded = None  # (model, tokenizer, preprocessing, paths: {"image": "fp32", "text": "bf16", ...})
        self._failure: tuple[float, ModelUnavailable] | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def _load(self):
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    # An unreachable hub costs ~40 s of retries: remember the failure for a
                    # while instead of making every search wait again.
                    if self._failure and time.monotonic() - self._failure[0] < RETRY_AFTER_SECONDS:
                        raise self._failure[1]
                    try:
                        self._loaded = self._load_unlocked()
                    except ModelUnavailable as error:
                        self._failure = (time.monotonic(), error)
                        raise
        return self._loaded

    def _load_unlocked(self):
        import torch  # heavy: only when a model is first needed
        from transformers import AutoTokenizer, CLIPModel

        if self.threads:
            torch.set_num_threads(self.threads)
        source = self.model_name
        try:
            # The local cache first: no network round trip when the model is already here.
            model = CLIPModel.from_pretrained(source, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError):
            try:
                model = CLIPModel.from_pretrained(source)
                tokenizer = AutoTokenizer.from_pretrained(source)
            except (OSError, ValueError) as error:
                raise ModelUnavailable(self._missing_message(error)) from error
        model.eval()
        preprocessing = self._preprocessing(source, model.config.vision_config.image_size)
        paths = choose(model, tokenizer, preprocessing["crop"], source, setting=self.precision_setting)
        log.info("loaded %s (image %s, text %s: %s)", source, paths["image"], paths["text"], paths["source"])
        return model, tokenizer, preprocessing, paths

    def _missing_message(self, error: Exception) -> str:
        if Path(self.model_name).is_absolute() or self.model_name.startswith("."):
            return (
                f"Model folder '{self.model_name}' cannot be loaded ({error}). Point IMGSIM_MODEL at a folder "
                "written by `python manage.py download_model` or by save_pretrained."
            )
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        return (
            f"Model '{self.model_name}' is not in the local cache"
            + (" and HF_HUB_OFFLINE=1 forbids downloading it" if offline else " and the hub cannot be reached")
            + ". Download it on a connected machine (`python manage.py download_model`) "
            "or set IMGSIM_MODEL to a local directory."
        )

    @staticmethod
    def _preprocessing(source: str, image_size: int) -> dict:
        config = {}
        try:
            from huggingface_hub import hf_hub_download

            local = Path(source) / "preprocessor_config.json"
            path = local if local.exists() else Path(hf_hub_download(source, "preprocessor_config.json"))
            config = json.loads(path.read_text())
        except Exception:  # no preprocessor config: CLIP defaults
            log.info("no preprocessor config for %s; using CLIP defaults", source)
        crop = config.get("crop_size", image_size)
        crop = crop.get("height", image_size) if isinstance(crop, dict) else crop
        size = config.get("size", crop)
        size = size.get("shortest_edge", crop) if isinstance(size, dict) else size
        return {
            "size": int(size),
            "crop": int(crop),
            "mean": np.array(config.get("image_mean", _CLIP_MEAN), dtype=np.float32).reshape(3, 1, 1),
            "std": np.array(config.get("image_std", _CLIP_STD), dtype=np.float32).reshape(3, 1, 1),
        }

    @property
    def input_size(self) -> int:
        return self._load()[2]["crop"]

    @property
    def dimension(self) -> int:
        return int(self._load()[0].config.projection_dim)

    @property
    def precision(self) -> str:
        """The numeric path of each tower, e.g. "image bf16, text fp32" (search.paths decides)."""
        paths = self._load()[3]
        return f"image {paths['image']}, text {paths['text']}"

    @property
    def paths(self) -> dict:
        """What search.paths chose for this model here, with the rates measured (if it measured)."""
        return self._load()[3]

    def preprocess(self, image) -> np.ndarray:
        """Resize (shortest edge), centre-crop and normalise one PIL image, as CLIP was trained."""
        from PIL import Image as PILImage

        prep = self._load()[2]
        image = image.convert("RGB")
        scale = prep["size"] / min(image.size)
        resized = (max(prep["crop"], round(image.width * scale)), max(prep["crop"], round(image.height * scale)))
        image = image.resize(resized, PILImage.Resampling.BICUBIC, reducing_gap=3.0)
        left, top = (resized[0] - prep["crop"]) // 2, (resized[1] - prep["crop"]) // 2
        image = image.crop((left, top, left + prep["crop"], top + prep["crop"]))
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return (pixels - prep["mean"]) / prep["std"]

    def _run(self, forward, batches, tower: str):
        import torch

        model, _, _, paths = self._load()
        use_bf16 = paths[tower] == "bf16"
        outputs = []
        with self._inference_lock, torch.inference_mode():
            for batch in batches:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                    result = forward(model, batch)
                vectors = getattr(result, "pooler_output", result)
                outputs.append(vectors.float().numpy())
        return _normalise(np.concatenate(outputs))

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Encode preprocessed (n, 3, S, S) pixels; return (n, dim) unit vectors."""
        import torch

        if len(pixels) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        tensor = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
        batches = tensor.split(self.batch_size)
        return self._run(lambda model, batch: model.get_image_features(pixel_values=batch), batches, "image")

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Encode texts; return (n, dim) unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        tokenizer = self._load()[1]
        max_length = min(getattr(tokenizer, "model_max_length", 77) or 77, 77)
        chunks = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        encoded = [
            tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            for chunk in chunks
        ]
        return self._run(lambda model, batch: model.get_text_features(**batch), encoded, "text")


@functools.cache
def get_embedder() -> Embedder:
    """Build the configured embedder (one per process)."""
    from search.backends import build_backend

    return build_backend("IMGSIM_EMBEDDER", Embedder)


def model_name() -> str:
    """The configured model's name (cheap: building an embedder loads nothing)."""
    return get_embedder().model_name
