"""The embedding model: a CLIP-like model through transformers, one instance per process.

torch and transformers are imported on first use, so `migrate`, the admin and the
gallery never pay for them. Vectors are L2-normalised float32.
"""

import functools
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from imgsim_site import heap
from search import paths
from search.errors import ModelUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 60


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

    @property
    def unavailable(self) -> str:
        """Why the model could not be loaded in this process lately ("" when it could, or was not tried)."""
        return ""


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class _Loaded:
    towers: object  # search.model_families.Towers
    runners: dict  # tower -> function(inputs) -> features
    paths: dict  # what search.paths chose, with the rates it measured


class TransformersEmbedder(Embedder):
    """A model of a supported family (CLIP, SigLIP, sentence-transformers; search.model_families).

    Each tower runs on the numeric path search.paths chose for it on this machine:
    torch fp32 or bfloat16, ONNX Runtime fp32 or int8, or fp16 on a GPU.
    """

    def __init__(
        self,
        *,
        model: str,
        precision: str = "auto",
        batch_size: int = 0,
        threads: int = 0,
        device: str = "auto",
        image_model: str = "",
        allow_int8: bool = False,
    ):
        self.model_name = model
        self.precision_setting = precision
        self.batch_size = batch_size
        self.threads = threads
        self.device_setting = device
        self.image_model = image_model
        self.allow_int8 = allow_int8
        self._lock = threading.Lock()
        self._inference_lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._failure: tuple[float, ModelUnavailable] | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    @property
    def unavailable(self) -> str:
        # The last failure stands until a load succeeds; RETRY_AFTER_SECONDS only spaces the retries.
        return str(self._failure[1]) if self._loaded is None and self._failure else ""

    def _load(self) -> _Loaded:
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
                    heap.settle("model")  # its objects stay for the process's life
        return self._loaded

    @property
    def device(self) -> str:
        """cpu, cuda or mps: IMGSIM_DEVICE, where auto takes a GPU when torch sees one."""
        import torch

        if self.device_setting != "auto":
            return self.device_setting
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"

    def _load_unlocked(self) -> _Loaded:
        import torch  # heavy: only when a model is first needed

        from search import model_families

        if self.threads:
            torch.set_num_threads(self.threads)
        device = self.device
        self.batch_size = self.batch_size or (32 if device == "cpu" else 128)
        towers = model_families.load(self.model_name, image_model=self.image_model)
        if device != "cpu":
            towers.image.to(device)
            towers.text.to(device)
        runner = functools.cache(lambda tower, path: self._runner(towers, tower, path, device))
        texts = [f"a photo of thing number {i} on a table" for i in range(paths.PROBE_TEXTS)]
        probe = {
            "image": [
                {"pixel_values": np.random.default_rng(0).normal(size=self._probe_shape(towers)).astype(np.float32)}
            ],
            "text": [towers.tokenize([text]) for text in texts],
        }
        chosen = paths.choose(
            self.model_name,
            runner,
            probe,
            setting=self.precision_setting,
            device=device,
            allow_int8=self.allow_int8,
        )
        runners = {tower: runner(tower, chosen[tower]) for tower in ("image", "text")}
        log.info(
            "loaded %s (%s; image %s, text %s: %s)",
            self.model_name,
            towers.family,
            chosen["image"],
            chosen["text"],
            chosen["source"],
        )
        return _Loaded(towers=towers, runners=runners, paths={**chosen, "family": towers.family, "device": device})

    @staticmethod
    def _probe_shape(towers) -> tuple:
        crop = towers.preprocessing["crop"]
        return (paths.PROBE_IMAGES, 3, crop, crop)

    def _runner(self, towers, tower: str, path: str, device: str):
        """The function that runs one tower on one numeric path: inputs (numpy) -> features (numpy)."""
        import torch

        if path in ("onnx", "int8"):
            from search import onnx_export

            session = onnx_export.session(
                onnx_export.exported(self.model_name, towers, tower, int8=path == "int8"), threads=self.threads
            )
            return lambda inputs: session.run(None, inputs)[0]
        module = towers.image if tower == "image" else towers.text
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(path)
        device_type = "cuda" if device == "cuda" else "cpu" if device == "cpu" else device

        def run(inputs):
            tensors = {name: torch.from_numpy(value).to(device) for name, value in inputs.items()}
            with torch.inference_mode(), torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
                return module(**tensors).float().cpu().numpy()

        return run

    @property
    def input_size(self) -> int:
        return self._load().towers.preprocessing["crop"]

    @property
    def dimension(self) -> int:
        return self._load().towers.dimension

    @property
    def family(self) -> str:
        return self._load().towers.family

    @property
    def precision(self) -> str:
        """The numeric path of each tower, e.g. "image bf16, text fp32" (search.paths decides)."""
        chosen = self._load().paths
        return f"image {chosen['image']}, text {chosen['text']}"

    @property
    def paths(self) -> dict:
        """What search.paths chose for this model here, with the rates measured (if it measured)."""
        return self._load().paths

    def runner(self, tower: str, path: str):
        """Run a tower on a path other than the chosen one (manage.py check_model compares paths)."""
        loaded = self._load()
        return self._runner(loaded.towers, tower, path, loaded.paths["device"])

    def preprocess(self, image) -> np.ndarray:
        """Resize (shortest edge, or both sides for SigLIP), centre-crop and normalise one PIL image."""
        from PIL import Image as PILImage

        prep = self._load().towers.preprocessing
        image = image.convert("RGB")
        crop = prep["crop"]
        if prep["squash"]:
            image = image.resize((crop, crop), PILImage.Resampling.BICUBIC, reducing_gap=3.0)
        else:
            scale = prep["size"] / min(image.size)
            resized = (max(crop, round(image.width * scale)), max(crop, round(image.height * scale)))
            image = image.resize(resized, PILImage.Resampling.BICUBIC, reducing_gap=3.0)
            left, top = (resized[0] - crop) // 2, (resized[1] - crop) // 2
            image = image.crop((left, top, left + crop, top + crop))
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return (pixels - prep["mean"]) / prep["std"]

    def _run(self, tower: str, batches, run=None) -> np.ndarray:
        run = run or self._load().runners[tower]
        with self._inference_lock:
            outputs = [np.asarray(run(batch), dtype=np.float32) for batch in batches]
        return _normalise(np.concatenate(outputs))

    def encode_pixels(self, pixels: np.ndarray, *, path: str | None = None) -> np.ndarray:
        """Encode preprocessed (n, 3, S, S) pixels; return (n, dim) unit vectors."""
        if len(pixels) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._load()  # settles the batch size
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        batches = [{"pixel_values": pixels[i : i + self.batch_size]} for i in range(0, len(pixels), self.batch_size)]
        return self._run("image", batches, self.runner("image", path) if path else None)

    def encode_texts(self, texts: list[str], *, path: str | None = None) -> np.ndarray:
        """Encode texts; return (n, dim) unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        towers = self._load().towers
        batches = [towers.tokenize(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return self._run("text", batches, self.runner("text", path) if path else None)


# The name settings used before more families than CLIP were supported.
ClipEmbedder = TransformersEmbedder


@functools.cache
def get_embedder() -> Embedder:
    """Build the configured embedder (one per process)."""
    from search.backends import build_backend

    return build_backend("IMGSIM_EMBEDDER", Embedder)


def model_name() -> str:
    """The configured model's name (cheap: building an embedder loads nothing)."""
    return get_embedder().model_name
