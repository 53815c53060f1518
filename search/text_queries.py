"""Query texts to vectors, remembering the last few hundred a process encoded.

A search is often run again with the same words: a filter or a chip changed, the
threshold moved, a negative added, the page reloaded. Encoding the text is most of
such a request's time on a CPU, and the answer depends only on the text and the
model, so each process keeps the vectors of the texts it encoded last.
"""

import threading
from collections import OrderedDict

import numpy as np

from search.embeddings import get_embedder

SIZE = 512  # vectors kept per process: 1 MB at 512 floats each


class _Recent:
    def __init__(self, size: int):
        self.size = size
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
            return vector

    def put(self, key, vector: np.ndarray) -> None:
        vector.setflags(write=False)  # shared by every request that asks for this text
        with self._lock:
            self._vectors[key] = vector
            self._vectors.move_to_end(key)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()


recent = _Recent(SIZE)


def encode(texts: list[str]) -> np.ndarray:
    """The (n, dim) unit vectors of these query texts; the ones not encoded lately go to the model in one call."""
    embedder = get_embedder()
    keys = [(embedder.model_name, text) for text in texts]
    found = {key: recent.get(key) for key in keys}
    missing = list(dict.fromkeys(key for key, vector in found.items() if vector is None))
    if missing:
        for key, vector in zip(missing, embedder.encode_texts([text for _, text in missing]), strict=True):
            recent.put(key, vector)
            found[key] = vector
    return np.stack([found[key] for key in keys]) if keys else embedder.encode_texts([])
