"""A deterministic test embedder whose similarities behave like a real model's on photos.

The tiny random CLIP maps every generated photo to nearly the same direction
(unrelated pairs score up to 0.99), which cannot tell duplicates from strangers.
This one embeds the zero-mean, low-resolution pixels: resized or re-encoded copies
score ~1.0, crops a little less, unrelated photos far less. It plugs in through
the documented IMGSIM_EMBEDDER backend setting.
"""

import hashlib

import numpy as np

from search.embeddings import Embedder


class PixelEmbedder(Embedder):
    model_name = "test/pixel-embedder"
    input_size = 6

    def __init__(self, **options):
        pass

    @property
    def dimension(self) -> int:
        return self.input_size * self.input_size * 3

    @property
    def loaded(self) -> bool:
        return True

    def preprocess(self, image) -> np.ndarray:
        from PIL import Image as PILImage

        small = image.convert("RGB").resize((self.input_size, self.input_size), PILImage.Resampling.BOX)
        pixels = np.asarray(small, dtype=np.float32).ravel()
        return pixels - pixels.mean()

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        vectors = np.asarray(pixels, dtype=np.float32).reshape(len(pixels), -1)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        seeds = [int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) for text in texts]
        vectors = np.stack([np.random.default_rng(seed).normal(size=self.dimension) for seed in seeds])
        return self.encode_pixels(vectors)
