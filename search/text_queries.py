"""Query texts to vectors, remembering the ones a process encoded last.

A search is often run again with the same words: a filter or a chip changed, the
threshold moved, a negative added, the page reloaded. Encoding the text is most of
such a request's time on a CPU, and the answer depends only on the text and the
model, so each process keeps the vectors of the texts it encoded last, in the
"query-vectors" cache (settings.CACHES: in memory, the oldest go first).
"""

import hashlib

import numpy as np
from django.core.cache import caches

from search.embeddings import get_embedder


def recent():
    return caches["query-vectors"]


def _key(model: str, text: str) -> str:
    return hashlib.blake2b(f"{model}\0{text}".encode(), digest_size=16).hexdigest()  # texts run to 500 characters


def encode(texts: list[str]) -> np.ndarray:
    """The (n, dim) unit vectors of these query texts; the ones not encoded lately go to the model in one call."""
    embedder = get_embedder()
    keys = {text: _key(embedder.model_name, text) for text in texts}
    found = recent().get_many(keys.values())
    missing = [text for text, key in keys.items() if key not in found]
    if missing:
        fresh = dict(zip((keys[text] for text in missing), embedder.encode_texts(missing), strict=True))
        recent().set_many(fresh)
        found.update(fresh)
    return np.stack([found[keys[text]] for text in texts]) if texts else embedder.encode_texts([])
