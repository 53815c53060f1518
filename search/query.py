"""Nearest-neighbour search with metadata filters that stay fast at any selectivity.

When scoring every candidate costs at most IMGSIM_EXACT_SEARCH_LIMIT vectors of a
pass over the shared vector file (gallery.vector_file: a pass over the whole file,
or gathering the rows of a narrow filter, each counted as GATHER_COST), the photos
are scored exactly: a matrix-vector product in float16, cheaper than an ANN query up
to a few hundred thousand photos and never missing a neighbour (bench.scale). Above
it, an unfiltered query asks Chroma's ANN index for IMGSIM_ANN_CANDIDATES photos
and keeps the best by exact score, and a broad filter over-fetches at least as many.
Either way SQLite confirms the final hits. Chroma's own `where` scans metadata:
35-225 ms at 100k, measured by bench/search.py.
"""

import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Q

from gallery.filters import to_q, validate
from search.columns import column_cache
from search.embeddings import model_name
from search.errors import IndexUnavailable
from search.paths import search_pass
from search.sync import current_generation, indexable, reading_index


@dataclass(frozen=True)
class Hit:
    image_id: int
    similarity: float


def nearest(
    vector: np.ndarray,
    *,
    top_k: int,
    threshold: float | None = None,
    where: dict | None = None,
    exclude_ids: frozenset[int] = frozenset(),
) -> list[Hit]:
    """Return up to top_k live photos most similar to a unit vector, best first."""
    if top_k <= 0:
        return []
    floor = -1.0 if threshold is None else threshold
    wanted = top_k + len(exclude_ids)
    if where:
        validate(where)
        hits = _filtered(vector, wanted, where)
    elif (columns := column_cache.columns(current_generation())).vectors.cost() <= settings.IMGSIM_EXACT_SEARCH_LIMIT:
        hits = _still_matching(_exact(columns, None, vector, wanted + 8), None)
    else:
        with reading_index() as index:
            found = index.query(model_name(), vector, max(wanted, settings.IMGSIM_ANN_CANDIDATES))
            if len(found) < wanted:  # fewer than asked: is the library that small, or is the index missing?
                _check_complete(index)
        hits = _still_matching(_rescored(columns, found, vector)[: wanted + 8], None)
    return [hit for hit in hits if hit.image_id not in exclude_ids and hit.similarity >= floor][:top_k]


def _check_complete(index) -> None:
    """Refuse to answer from an index that lost photos SQLite has (a deleted or damaged Chroma folder)."""
    expected = indexable().count()
    actual = index.count(model_name())
    if actual >= expected:
        return
    if settings.IMGSIM_WORKER:
        from search.tasks import request_index_check

        request_index_check()
        action = "It is being rebuilt in the background; try again in a minute."
    else:
        action = "An administrator should run `python manage.py reindex` (about a minute per 100k photos)."
    raise IndexUnavailable(f"The search index holds {actual} of the library's {expected} photos. {action}")


def _filtered(vector: np.ndarray, wanted: int, where: dict) -> list[Hit]:
    columns = column_cache.columns(current_generation())
    mask = columns.mask(where)
    matching = int(np.count_nonzero(mask))
    if matching == 0:
        return []
    if columns.vectors.cost(matching) <= settings.IMGSIM_EXACT_SEARCH_LIMIT:
        return _still_matching(_exact(columns, mask, vector, wanted + 8), where)[:wanted]
    candidate_ids = columns.ids[mask]  # sorted
    with reading_index() as index:
        total = max(len(columns.ids), 1)
        share = len(candidate_ids) / total
        # Enough for the filter's share of the library, and never fewer than the candidates an
        # unfiltered search re-scores; the loop doubles it when too few pass.
        fetch = min(total, max(math.ceil(wanted / share * 2) + 16, settings.IMGSIM_ANN_CANDIDATES))
        while True:
            ann = index.query(model_name(), vector, fetch)
            ann_ids = np.fromiter((int(pk) for pk, _ in ann), dtype=np.int64, count=len(ann))
            positions = np.searchsorted(candidate_ids, ann_ids).clip(0, len(candidate_ids) - 1)
            passing = candidate_ids[positions] == ann_ids
            hits = [(pk, sim) for (pk, sim), ok in zip(ann, passing) if ok]
            if len(hits) >= wanted + 8 or fetch >= total:
                return _still_matching(_rescored(columns, hits, vector), where)[:wanted]
            fetch = min(total, fetch * 2)


def _exact(columns, mask, vector: np.ndarray, count: int) -> list[Hit]:
    """The count best of the photos in mask (all when None), scored exactly, best first."""
    positions, scores = columns.vectors.best(vector, count, mask, rough_pass=search_pass())
    return [Hit(int(columns.ids[p]), float(s)) for p, s in zip(positions, scores)]


def _rescored(columns, found: list[tuple], vector: np.ndarray) -> list[Hit]:
    """The ANN's candidates (id, similarity) scored exactly from the shared vectors, best first.

    HNSW returns a good candidate set more reliably than a good order: asking it for
    IMGSIM_ANN_CANDIDATES and keeping the exact best is what lifts recall@10 on queries
    far from every photo (CLIP's text queries) from ~0.95 to ~0.99 (bench.scale).
    """
    if not found:
        return []
    found_ids = np.fromiter((int(pk) for pk, _ in found), dtype=np.int64, count=len(found))
    positions = np.searchsorted(columns.ids, found_ids).clip(0, max(len(columns.ids) - 1, 0))
    known = columns.ids[positions] == found_ids if len(columns.ids) else np.zeros(len(found), dtype=bool)
    scores = np.array([similarity for _, similarity in found], dtype=np.float32)
    if known.any():  # a photo newer than the column cache keeps the ANN's similarity
        scores[known] = columns.vectors.similarities(vector, positions[known])
    order = np.argsort(-scores, kind="stable")
    return [Hit(int(found_ids[i]), float(scores[i])) for i in order]


def _still_matching(hits: list[Hit], where: dict | None) -> list[Hit]:
    """Keep the hits that SQLite (the truth) still says are live and pass; the column cache may lag 2 s."""
    if not hits:
        return hits
    ok = set(
        indexable()
        .filter(to_q(where, few=True) if where else Q())
        .filter(pk__in=[h.image_id for h in hits])
        .order_by()
        .values_list("pk", flat=True)
    )
    return [hit for hit in hits if hit.image_id in ok]
