"""Plug points that other apps fill in, so gallery never imports them.

search registers its embedder here in `SearchConfig.ready()`; the ingest pipeline
then computes vectors while it still holds the decoded pixels, instead of the sync
decoding every photo a second time.
"""

import contextlib
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np


class Vectorizer(Protocol):
    model_name: str
    input_size: int
    dimension: int

    def preprocess(self, image) -> np.ndarray: ...

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray: ...


_vectorizer_factory: Callable[[], Vectorizer] | None = None


def set_vectorizer_factory(factory: Callable[[], Vectorizer]) -> None:
    global _vectorizer_factory
    _vectorizer_factory = factory


def get_vectorizer() -> Vectorizer | None:
    return _vectorizer_factory() if _vectorizer_factory else None


def search_unavailable() -> str:
    """Why search cannot run in this process just now (the model failed to load), or ""; loads nothing."""
    vectorizer = get_vectorizer()
    return getattr(vectorizer, "unavailable", "") if vectorizer is not None else ""


def current_model_name() -> str:
    """The configured embedding model's name ("" when no app provides one); loads nothing."""
    vectorizer = get_vectorizer()
    return vectorizer.model_name if vectorizer is not None else ""


_index_opener: Callable[[str], None] | None = None


def set_index_opener(opener: Callable[[str], None]) -> None:
    global _index_opener
    _index_opener = opener


def open_index(model_name: str) -> None:
    """Open the index that vectors of this model go to; raises if it cannot be opened."""
    if _index_opener:
        _index_opener(model_name)


_not_searchable: Callable[..., int] | None = None


def set_not_searchable(counter: Callable[..., int]) -> None:
    global _not_searchable
    _not_searchable = counter


def not_searchable(image_ids: list[int] | None = None, *, up_to: int | None = None) -> int:
    """How many live photos (of these, or of all) are stored but cannot be found by search yet.

    up_to: of all, counted no further than one beyond it (up_to + 1 means "more than up_to").
    """
    return _not_searchable(image_ids, up_to=up_to) if _not_searchable else 0


_stats_contributor: Callable[[], dict] | None = None
_contributions_version: Callable[[], object] | None = None


def set_stats_contributor(numbers: Callable[[], dict], version: Callable[[], object]) -> None:
    """Add numbers to the library statistics; version() changes whenever they may have."""
    global _stats_contributor, _contributions_version
    _stats_contributor, _contributions_version = numbers, version


def contributed_stats() -> dict:
    return _stats_contributor() if _stats_contributor else {}


def contributions_version() -> object:
    return _contributions_version() if _contributions_version else None


_local = threading.local()


@contextlib.contextmanager
def embedding_deferred(deferred: bool = True):
    """Within this block, saved photos wait for embeddings (reconcile computes them later)."""
    previous = getattr(_local, "deferred", False)
    _local.deferred = deferred or previous
    try:
        yield
    finally:
        _local.deferred = previous


def is_embedding_deferred() -> bool:
    return getattr(_local, "deferred", False)


_result_ids: Callable[[object, object], list[int]] | None = None


def set_result_ids(provider: Callable[[object, object], list[int]]) -> None:
    global _result_ids
    _result_ids = provider


def result_ids(params, user) -> list[int]:
    """The photo ids a search with these URL parameters shows this user, in order (for prev/next on a photo)."""
    return _result_ids(params, user) if _result_ids else []
