"""How vectors are stored in SQLite: little-endian float32 bytes."""

import numpy as np

DTYPE = np.dtype("<f4")


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=DTYPE).tobytes()


def from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=DTYPE)


def stack(blobs: list[bytes | memoryview]) -> np.ndarray:
    """Return an (n, dim) float32 matrix from stored vectors (one copy, no per-row arrays)."""
    if not blobs:
        return np.zeros((0, 0), dtype=DTYPE)
    return np.frombuffer(b"".join(bytes(blob) for blob in blobs), dtype=DTYPE).reshape(len(blobs), -1)
