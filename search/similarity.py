"""All pairs of vectors above a similarity, by blocked matrix products: the core of the duplicate scan.

No models are imported here, so the standalone toolkit (search.standalone) uses it
without a Django project. The product runs in fp32, bfloat16 or int8, whichever
measured fastest on this machine (search.paths.block_dtype); candidates are
re-scored in fp32, so the rounding paths find the same pairs.
"""

from collections.abc import Callable, Iterator

import numpy as np
from django.conf import settings


def similar_blocks(
    vectors: np.ndarray, rows: np.ndarray, floor: float, *, triangle: bool, first: int = 0, quantised=None
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (rows done, i, j, similarity) block by block: i in rows, i != j, each pair once, similarity >= floor.

    triangle: rows are the photos from position rows[0] on (a full scan), so each
    row needs only the columns from its own on. Otherwise rows are compared with
    every column. first: the position in rows to start at (a resumed scan).
    quantised: (the vectors in int8, their scale) when they exist already (_block_product).
    """
    import torch

    from search.paths import block_dtype

    matrix, product, cut = _block_product(vectors, block_dtype(), floor, quantised)  # measured on this machine
    in_rows = np.zeros(len(vectors), dtype=bool)
    in_rows[rows] = True
    block = block_rows_for(len(vectors))
    with torch.inference_mode():
        for start in range(first, len(rows), block):
            block_rows = rows[start : start + block]
            first_column = int(block_rows[0]) if triangle else 0
            scores = product(matrix[block_rows], matrix[first_column:])
            if triangle:  # within the block itself, keep only j > i (no self-pairs, no repeats)
                width = len(block_rows)
                below = torch.ones(width, width, dtype=torch.bool).tril()
                lowest = -float("inf") if scores.dtype.is_floating_point else torch.iinfo(scores.dtype).min
                scores[:, :width].masked_fill_(below, lowest)
            # Almost every row has no hit: a row maximum (one pass, no boolean matrix) finds
            # the few that do before positions are extracted.
            busy = torch.nonzero(scores.amax(dim=1) >= cut).flatten()
            i = j = np.zeros(0, dtype=np.int64)
            if len(busy):
                sub_r, sub_c = torch.nonzero(scores[busy] >= cut, as_tuple=True)
                i = block_rows[busy[sub_r].numpy()]
                j = sub_c.numpy() + first_column
                if not triangle:  # pairs among scanned rows: keep each once, drop self-pairs
                    keep = (j != i) & (~in_rows[j] | (j > i))
                    i, j = i[keep], j[keep]
            exact = np.einsum("ij,ij->i", vectors[i], vectors[j]) if len(i) else np.zeros(0, dtype=np.float32)
            keep = exact >= floor
            yield start + len(block_rows), i[keep], j[keep], exact[keep]


def similar_to_all(
    queries: np.ndarray,
    rows: np.ndarray,
    total: int,
    floor: float,
    *,
    kind: str,
    columns_at: Callable[[np.ndarray], np.ndarray],
    exact_at: Callable[[np.ndarray], np.ndarray],
    scale: float = 1.0,
    first: int = 0,
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (rows done, i, j, similarity): the pairs of similar_blocks(triangle=False) for a few rows
    against all `total` vectors, without a copy of them all.

    queries: the rows' float32 vectors. columns_at(positions): those vectors ready to multiply,
    int8 at `scale` for kind "int8", else float16; exact_at(positions): float32, to re-score the
    candidates. A thousand new photos against a million read the shared file slice by slice,
    where a full matrix meant converting every vector for each scan.
    """
    import torch

    chunk, block = 16_384, block_rows_for(16_384)
    in_rows = np.zeros(total, dtype=bool)
    in_rows[rows] = True
    if kind == "int8":
        cut = (floor - 0.02) * scale * scale
        prepared = torch.from_numpy(np.rint(queries * scale).clip(-127, 127).astype(np.int8))

        def product(a, b):
            return torch._int_mm(a, b.T)
    else:
        cut = floor - (0.01 if kind == "bf16" else 1e-4)
        dtype = torch.bfloat16 if kind == "bf16" else torch.float32
        prepared = torch.from_numpy(queries).to(dtype)
        # The same buffers for every slice, and float16 -> bfloat16 by way of float32: fresh
        # temporaries faulted in their pages for every slice, and torch's direct conversion is slower.
        staged = torch.empty((chunk, queries.shape[1]))
        converted = staged if dtype == torch.float32 else torch.empty((chunk, queries.shape[1]), dtype=dtype)
        products = torch.empty((min(block, len(rows)), chunk), dtype=dtype)

        def product(a, b):
            staged[: len(b)].copy_(b)
            if converted is not staged:
                converted[: len(b)].copy_(staged[: len(b)])
            if len(a) == len(products) and len(b) == chunk:
                return torch.mm(a, converted.T, out=products)
            return a @ converted[: len(b)].T

    with torch.inference_mode():
        for start in range(first, len(rows), block):
            block_rows, found = rows[start : start + block], []
            for column in range(0, total, chunk):
                positions = np.arange(column, min(column + chunk, total))
                scores = product(prepared[start : start + block], torch.from_numpy(columns_at(positions)))
                busy = torch.nonzero(scores.amax(dim=1) >= cut).flatten()  # as in similar_blocks: few rows hit
                if len(busy):
                    sub_r, sub_c = torch.nonzero(scores[busy] >= cut, as_tuple=True)
                    found.append((busy[sub_r].numpy() + start, positions[sub_c.numpy()]))
            at = np.concatenate([r for r, _ in found]) if found else np.zeros(0, dtype=np.int64)
            i, j = rows[at], np.concatenate([c for _, c in found]) if found else at
            keep = (j != i) & (~in_rows[j] | (j > i))  # pairs among the rows: each once
            at, i, j = at[keep], i[keep], j[keep]
            exact = np.einsum("ij,ij->i", queries[at], exact_at(j)) if len(i) else np.zeros(0, dtype=np.float32)
            keep = exact >= floor
            yield start + len(block_rows), i[keep], j[keep], exact[keep]


def clustered_blocks(
    vectors: np.ndarray,
    rows: np.ndarray,
    floor: float,
    *,
    probes: int = 3,
    first: int = 0,
    seed: int = 0,
    quantised=None,
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (clusters done, clusters, i, j, similarity): the pairs of similar_blocks, found without
    comparing every pair.

    Spherical k-means splits the vectors into about sqrt(probes x n) clusters; each row is compared
    only with the photos whose nearest cluster is among the row's `probes` nearest. A pair above a
    duplicate's floor (an angle under ~26 degrees) almost always shares those clusters, and the cost
    drops from n^2/2 products to about probes x n x n / clusters. Each pair is yielded once, at the
    first cluster that finds it. first: the cluster to start at (a resumed scan; k-means is seeded,
    so the same vectors give the same clusters).
    """
    import torch

    from search.paths import block_dtype

    nearest = nearest_clusters(vectors, max(1, int(np.sqrt(probes * len(vectors)))), probes, seed=seed)
    count, probes = (int(nearest.max()) + 1 if len(nearest) else 0), nearest.shape[1]
    home = nearest[:, 0]
    members = np.argsort(home, kind="stable")
    member_bounds = np.searchsorted(home[members], np.arange(count + 1))
    asked = nearest[rows].ravel()  # (row, cluster) pairs, grouped by cluster
    order = np.argsort(asked, kind="stable")
    askers, asker_bounds = np.repeat(rows, probes)[order], np.searchsorted(asked[order], np.arange(count + 1))
    in_rows = np.zeros(len(vectors), dtype=bool)
    in_rows[rows] = True
    matrix, product, cut = _block_product(vectors, block_dtype(), floor, quantised)
    with torch.inference_mode():
        for cluster in range(first, count):
            homes = members[member_bounds[cluster] : member_bounds[cluster + 1]]
            queries = askers[asker_bounds[cluster] : asker_bounds[cluster + 1]]
            found_i, found_j = [], []
            columns = matrix[homes] if len(homes) and len(queries) else None
            for start in range(0, len(queries) if columns is not None else 0, block_rows_for(len(homes))):
                block = queries[start : start + block_rows_for(len(homes))]
                sub_r, sub_c = torch.nonzero(product(matrix[block], columns) >= cut, as_tuple=True)
                found_i.append(block[sub_r.numpy()])
                found_j.append(homes[sub_c.numpy()])
            i = np.concatenate(found_i) if found_i else np.zeros(0, dtype=np.int64)
            j = np.concatenate(found_j) if found_j else np.zeros(0, dtype=np.int64)
            # j may have found i too, at the cluster of i's home: keep the pair at the first of the two.
            other = np.where(in_rows[j] & (nearest[j] == home[i][:, None]).any(axis=1), home[i], count)
            keep = (i != j) & ((cluster < other) | ((cluster == other) & (i < j)))
            i, j = i[keep], j[keep]
            exact = np.einsum("ij,ij->i", vectors[i], vectors[j]) if len(i) else np.zeros(0, dtype=np.float32)
            keep = exact >= floor
            yield cluster + 1, count, i[keep], j[keep], exact[keep]


def nearest_clusters(vectors: np.ndarray, count: int, probes: int, *, seed: int = 0, rounds: int = 8) -> np.ndarray:
    """Spherical k-means on a sample (40 vectors a cluster); return each vector's `probes` nearest
    clusters, nearest first (n x probes)."""
    import torch

    rng = np.random.default_rng(seed)
    count = min(count, len(vectors))
    if count == 0:
        return np.zeros((0, probes), dtype=np.int64)
    sample = torch.from_numpy(vectors[np.sort(rng.choice(len(vectors), min(len(vectors), 40 * count), replace=False))])
    centroids = sample[torch.from_numpy(rng.choice(len(sample), count, replace=False))].clone()
    for _ in range(rounds):
        labels = _nearest(sample, centroids, 1)[:, 0]
        sums = torch.zeros_like(centroids).index_add_(0, torch.from_numpy(labels), sample)
        sizes = np.bincount(labels, minlength=count)
        empty = np.flatnonzero(sizes == 0)  # a centre nobody chose starts again at a random sample vector
        sums[torch.from_numpy(empty)] = sample[torch.from_numpy(rng.choice(len(sample), len(empty)))]
        centroids = torch.nn.functional.normalize(sums, dim=1)
    return _nearest(torch.from_numpy(np.ascontiguousarray(vectors)), centroids, min(probes, count))


def _nearest(vectors, centroids, probes: int) -> np.ndarray:
    import torch

    found = []
    with torch.inference_mode():
        for start in range(0, len(vectors), 16_384):
            found.append(torch.topk(vectors[start : start + 16_384] @ centroids.T, probes, dim=1).indices.numpy())
    return np.concatenate(found) if found else np.zeros((0, probes), dtype=np.int64)


def block_rows_for(columns: int) -> int:
    """Rows per block: IMGSIM_DUPLICATE_BLOCK, fewer when a block's scores (4 bytes per row and
    column) would pass IMGSIM_DUPLICATE_MEMORY_MB. At a million photos the default block's scores
    took 4 GB, and an incremental scan ran a 24 GB machine out of memory (bench.scale)."""
    budget = settings.IMGSIM_DUPLICATE_MEMORY_MB * 2**20
    return int(min(settings.IMGSIM_DUPLICATE_BLOCK, max(16, budget // (4 * max(columns, 1)))))


def _block_product(vectors: np.ndarray, kind: str, floor: float, quantised=None):
    """The matrix to multiply, the product of two of its slices, and the score a candidate needs.

    Candidates are re-scored exactly in fp32 afterwards, so a rounding path only needs a
    margin below the floor: bfloat16 keeps 8 bits of each value; int8 scales every
    component by one factor (127 / the largest), so a score is off by ~0.001 typically.
    quantised: (int8 matrix, scale) already made, e.g. from the shared file's twin.
    """
    import torch

    if kind == "int8" and quantised is not None:
        matrix, scale = quantised
        return torch.from_numpy(matrix), lambda a, b: torch._int_mm(a, b.T), (floor - 0.02) * scale * scale
    if kind == "int8":
        # In slices: whole-matrix temporaries (4 bytes a value, several of them) took 13 s
        # and gigabytes at a million photos; slices of 16k rows stay in cache.
        slices = [slice(start, start + 16_384) for start in range(0, len(vectors), 16_384)]
        source = torch.from_numpy(vectors)
        largest = max((float(source[part].abs().max()) for part in slices), default=0.0)
        scale = 127.0 / max(largest, 1e-6)
        matrix = torch.empty(vectors.shape, dtype=torch.int8)
        for part in slices:  # torch uses both cores where numpy took 5 s for a million rows on one
            matrix[part] = torch.round(source[part] * scale).to(torch.int8)
        return matrix, lambda a, b: torch._int_mm(a, b.T), (floor - 0.02) * scale * scale
    dtype = torch.bfloat16 if kind == "bf16" else torch.float32
    matrix = torch.from_numpy(np.ascontiguousarray(vectors)).to(dtype)
    return matrix, lambda a, b: a @ b.T, floor - (0.01 if kind == "bf16" else 1e-4)


def similar_pairs(
    vectors: np.ndarray, rows: np.ndarray, floor: float, on_progress: Callable[[float], None] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (i, j, similarity) with i in rows, i != j, each pair once, similarity >= floor."""
    found = []
    for done, *block in similar_blocks(vectors, rows, floor, triangle=len(rows) == len(vectors)):
        found.append(block)
        if on_progress:
            on_progress(done / max(len(rows), 1))
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    return tuple(np.concatenate(parts) for parts in zip(*found))
