"""How vectors are stored in SQLite: little-endian float32 bytes in ImageVector rows."""

from collections.abc import Iterable

import numpy as np

DTYPE = np.dtype("<f4")


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=DTYPE).tobytes()


def from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=DTYPE)


# Ids per query: SQLite refuses more than 32,766 (or 250,000) parameters in one statement.
LOAD_CHUNK = 10_000


def load(image_ids: Iterable[int]) -> dict[int, np.ndarray]:
    """Return {image id: vector} for those of these images that have one."""
    from gallery.models import ImageVector

    ids = list(image_ids)
    found = {}
    for start in range(0, len(ids), LOAD_CHUNK):
        rows = ImageVector.objects.filter(image_id__in=ids[start : start + LOAD_CHUNK]).values_list("image_id", "data")
        found.update((image_id, from_bytes(data)) for image_id, data in rows)
    return found


def load_one(image_id: int) -> np.ndarray | None:
    return load([image_id]).get(image_id)


def save(vectors: dict[int, np.ndarray]) -> None:
    """Store (insert or replace) the vectors of these images."""
    from gallery import vector_file
    from gallery.models import ImageVector

    if ImageVector.objects.filter(image_id__in=list(vectors)).exists():
        vector_file.forget_all()  # a photo's vector changed: the shared file must not serve the old one
    ImageVector.objects.bulk_create(
        [ImageVector(image_id=image_id, data=to_bytes(vector)) for image_id, vector in vectors.items()],
        update_conflicts=True,
        unique_fields=["image"],
        update_fields=["data"],
    )
