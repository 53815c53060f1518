"""Plug points that other apps fill in, so gallery never imports them.

search registers its embedder here in `SearchConfig.ready()`; the ingest pipeline
then computes vectors while it still holds the decoded pixels, instead of the sync
decoding every photo a second time.
"""

from collections.abc import Callable
from typing import Protocol

import numpy as np


class Vectorizer(Protocol):
    model_name: str

    def preprocess(self, image) -> np.ndarray: ...

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray: ...


_vectorizer_factory: Callable[[], Vectorizer] | None = None


def set_vectorizer_factory(factory: Callable[[], Vectorizer]) -> None:
    global _vectorizer_factory
    _vectorizer_factory = factory


def get_vectorizer() -> Vectorizer | None:
    return _vectorizer_factory() if _vectorizer_factory else None
