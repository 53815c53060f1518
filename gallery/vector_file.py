"""Every embedded photo's vector in one memory-mapped float16 file per model, shared by all processes.

SQLite (gallery.vectors) stays the source of truth; this file is a copy made for
reading. Each web process used to hold its own float32 copy of every vector
(2 GB per process at a million photos); mapped from one file, the pages are in
memory once however many workers read them, and float16 halves them again.

A file is never changed once written: a newer one replaces it. Which file is
current is a LibraryVersion row ("vectors:<model digest>" -> a random number that
names the file), so the pointer moves with the database it describes: a restored
backup or a rolled-back test never reads a file written for other rows. Storing
a vector for a photo that already had one (a re-embedded photo) drops the pointer,
and the next reader writes a new file from SQLite.
"""

import contextlib
import hashlib
import mmap
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from gallery.models import LibraryVersion

DTYPE = np.float16
# Scoring a gathered row costs about as much as scoring this many rows in a pass over the file (bench.scale).
GATHER_COST = 16
# The int8 pass's scores are off by ~0.002, where the float16 pass's are off by ~1e-4: this many more
# of its best are scored again from the file (a gather of a few hundred rows, ~0.1 ms).
INT8_SHORTLIST = 224


@dataclass(frozen=True)
class VectorFile:
    number: int
    ids: np.ndarray  # int64, sorted, memory-mapped
    vectors: np.ndarray  # float16 (len(ids), dimension), memory-mapped; row i is the vector of ids[i]
    stem: Path


def quantised(file: VectorFile) -> tuple[np.ndarray, float]:
    """The file's vectors in int8 (each component times scale, rounded; scale = 127 / the largest
    component) and the scale, mapped. Written beside the file with it (or by the first reader of a
    file from before) and kept as long as the file: search's int8 pass reads half the bytes, and the
    duplicate scan multiplies these instead of quantising every vector for every scan. Scores from
    them only nominate candidates; the file's own vectors score them."""
    import torch

    path, scale_path = file.stem.with_suffix(".int8.npy"), file.stem.with_suffix(".int8-scale.npy")
    try:
        return np.load(path, mmap_mode="c"), float(np.load(scale_path))
    except (OSError, ValueError):
        pass
    slices = [slice(start, start + 65_536) for start in range(0, len(file.ids), 65_536)]
    with torch.inference_mode():  # torch uses both cores where numpy took ~8 s for a million vectors on one
        largest = max((float(torch.from_numpy(file.vectors[part]).abs().max()) for part in slices), default=0.0)
        scale = 127.0 / max(largest, 1e-6)
        partial = path.with_suffix(f".{secrets.token_hex(4)}.partial")  # two writers at once write apart
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.int8, shape=file.vectors.shape)
        for part in slices:
            rows = torch.from_numpy(file.vectors[part]).float().mul_(scale).round_()
            out[part] = rows.to(torch.int8).numpy()
    out.flush()
    del out
    scale_partial = scale_path.with_suffix(f".{secrets.token_hex(4)}.partial")
    with open(scale_partial, "wb") as scale_out:
        np.save(scale_out, np.float32(scale))
    os.replace(scale_partial, scale_path)
    os.replace(partial, path)  # last: the pair is complete once this name exists
    return np.load(path, mmap_mode="c"), float(np.load(scale_path))


def current(model: str) -> VectorFile | None:
    """The model's current file, mapped; None when there is none (or it vanished: a newer one replaced it)."""
    number = LibraryVersion.objects.filter(name=_key(model)).values_list("version", flat=True).first()
    if not number:
        return None
    stem = _stem(model, number)
    try:
        ids = np.load(stem.with_suffix(".ids.npy"), mmap_mode="c")
        vectors = np.load(stem.with_suffix(".vectors.npy"), mmap_mode="c")
    except (OSError, ValueError):
        return None
    # Mapped copy-on-write ("c") so torch takes the arrays without a copy or a read-only warning;
    # nothing writes to them, and unwritten pages stay shared.
    if ids.ndim != 1 or vectors.ndim != 2 or len(ids) != len(vectors) or vectors.dtype != DTYPE:
        return None
    return VectorFile(number, ids, vectors, stem)


def write(model: str, ids: np.ndarray, vectors_at: Callable[[np.ndarray], np.ndarray]) -> VectorFile:
    """Write a new file of these photos' vectors (ids sorted; vectors_at(positions) gives rows) and make it current.

    Written in slices into a mapped file, so writing a million vectors never holds them all
    in memory; the model's older files are removed.
    """
    folder = Path(settings.IMGSIM_VECTOR_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    number = secrets.randbits(62) or 1
    stem = _stem(model, number)
    first = vectors_at(np.arange(min(1, len(ids))))
    partial = stem.with_suffix(".vectors.npy.partial")
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=DTYPE, shape=(len(ids), first.shape[1]))
    for start in range(0, len(ids), 16_384):
        positions = np.arange(start, min(start + 16_384, len(ids)))
        out[positions[0] : positions[-1] + 1] = vectors_at(positions)
    out.flush()
    del out
    _fsync(partial)
    os.replace(partial, stem.with_suffix(".vectors.npy"))  # readers never see half a file
    partial = stem.with_suffix(".ids.npy.partial")
    with open(partial, "wb") as out_ids:  # a file object: np.save would add ".npy" to a name
        np.save(out_ids, np.asarray(ids, dtype=np.int64))
    _fsync(partial)
    os.replace(partial, stem.with_suffix(".ids.npy"))
    LibraryVersion.objects.update_or_create(name=_key(model), defaults={"version": number})
    # Processes still reading an older file keep their mapping (Linux frees it when they let go).
    for old in folder.glob(f"{_digest(model)}-*"):
        if not old.name.startswith(stem.name + "."):
            old.unlink(missing_ok=True)
    found = current(model)
    assert found is not None and found.number == number
    quantised(found)
    return found


def _fsync(path: Path) -> None:
    with open(path, "rb") as written:
        os.fsync(written.fileno())


def forget_all() -> None:
    """Stop using every model's file: the next reader writes a new one from SQLite."""
    LibraryVersion.objects.filter(name__startswith="vectors:").delete()


def _digest(model: str) -> str:
    return hashlib.sha256(model.encode()).hexdigest()[:20]


def _key(model: str) -> str:
    return f"vectors:{_digest(model)}"


def _stem(model: str, number: int) -> Path:
    return Path(settings.IMGSIM_VECTOR_DIR) / f"{_digest(model)}-{number:016x}"


class VectorTable:
    """The vectors of some photos (ids, sorted): rows of the shared file, and the few newer ones in memory.

    position_rows[i] is the row of ids[i]: a row of the file when >= 0, of `extra` when
    negative (-1 is extra's first).
    """

    def __init__(self, ids: np.ndarray, file: VectorFile | None, position_rows: np.ndarray, extra: np.ndarray):
        self.ids, self.file, self.position_rows, self.extra = ids, file, position_rows, extra
        self._int8 = None  # the file's int8 twin and its scales as torch tensors, once a pass asks
        self.dimension = file.vectors.shape[1] if file is not None else (extra.shape[1] if extra.ndim == 2 else 0)
        # Every row of the file is ids' row in order (nothing new, nothing gone): a pass needs no gathering.
        self.file_is_table = (
            file is not None
            and len(extra) == 0
            and len(file.ids) == len(ids)
            and bool((position_rows == np.arange(len(ids))).all())
        )

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The float16 vectors of ids[positions]."""
        rows = self.position_rows[positions]
        if len(rows) and rows[0] >= 0 and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
            return np.array(self.file.vectors[rows[0] : rows[-1] + 1])  # a run of the file: a copy, no gather
        taken = np.empty((len(rows), self.dimension), dtype=DTYPE)
        in_file = rows >= 0
        if in_file.any():
            taken[in_file] = np.take(self.file.vectors, rows[in_file], axis=0)
        if not in_file.all():
            taken[~in_file] = self.extra[-1 - rows[~in_file]]
        return taken

    def take_int8(self, positions: np.ndarray, quantised_file: np.ndarray, scale: float) -> np.ndarray:
        """The vectors of ids[positions] in int8 at this scale: rows of the file's quantised twin
        (see quantised), the newer rows quantised here."""
        rows = self.position_rows[positions]
        if len(rows) and rows[0] >= 0 and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
            return np.array(quantised_file[rows[0] : rows[-1] + 1])
        taken = np.empty((len(rows), self.dimension), dtype=np.int8)
        in_file = rows >= 0
        if in_file.any():
            taken[in_file] = np.take(quantised_file, rows[in_file], axis=0)
        if not in_file.all():
            newer = self.extra[-1 - rows[~in_file]].astype(np.float32) * scale
            taken[~in_file] = np.rint(newer).clip(-127, 127)
        return taken

    def cost(self, count: int | None = None) -> int:
        """What best() over count of the ids (all when None) costs, in vectors of one pass over the file."""
        file_rows = len(self.file.ids) if self.file is not None else 0
        if count is None or count * GATHER_COST > file_rows:
            return file_rows + len(self.extra)
        return count * GATHER_COST

    def similarities(self, vector: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Similarities (float32, summed in float32) of a unit vector to ids[positions]."""
        import torch

        if len(positions) == 0:
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            rows = torch.from_numpy(self.take(positions)).float()
            return (rows @ torch.from_numpy(np.asarray(vector, dtype=np.float32))).numpy()

    def best(
        self, vector: np.ndarray, count: int, positions: np.ndarray | None = None, *, rough_pass: str = "fp16"
    ) -> tuple[np.ndarray, ...]:
        """The count positions (of positions, or all) most like a unit vector, best first, and their similarities.

        A first pass in float16 (torch reads the half-size rows directly; numpy would convert
        them element by element) rounds each score to ~1e-4, so its best few are scored again
        in float32 and the order comes from those. rough_pass="int8": the first pass reads the
        file's int8 twin instead (scores off by ~0.002; half the bytes, and the file's own pages
        are read only for the few rows scored again), and more of its best are re-scored.
        """
        import torch  # not at import: web processes start without it until a search needs it

        everything = positions is None
        positions = np.arange(len(self.ids)) if everything else positions
        if len(positions) == 0 or count <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        wanted = len(positions)  # how many may be picked (masked rows never are)
        query = torch.from_numpy(np.asarray(vector, dtype=DTYPE))
        shortlist = 2 * count + 32 + (INT8_SHORTLIST if rough_pass == "int8" else 0)
        with torch.inference_mode():
            if self.file is not None and len(positions) * GATHER_COST > len(self.file.ids):
                # One pass over the whole file, in its order, beats gathering this many of its rows.
                whole_file = self._whole_file(query, rough_pass)
                if self.file_is_table:  # scores in the table's order: rows outside positions are masked,
                    rough = whole_file  # where gathering most of a million of them cost milliseconds
                    if not everything:
                        outside = torch.ones(len(whole_file), dtype=torch.bool)
                        outside[torch.from_numpy(positions)] = False
                        rough.masked_fill_(outside, float("-inf"))
                        positions = np.arange(len(self.ids))
                else:
                    rows = self.position_rows[positions]
                    in_file = rows >= 0
                    rough = torch.empty(len(positions), dtype=torch.float16)
                    rough[in_file] = whole_file[rows[in_file]]
                    if not in_file.all():
                        rough[~in_file] = torch.from_numpy(self.extra[-1 - rows[~in_file]]) @ query
            elif rough_pass == "int8" and self.file is not None:  # the twin's rows: the file's pages stay cold
                twin, scale = self._twin()[:2]
                rough = (torch.from_numpy(self.take_int8(positions, twin, scale)).half() @ query) * (1 / scale)
            else:
                rough = torch.from_numpy(self.take(positions)) @ query
            picked = _top(rough, min(wanted, shortlist)).numpy()
        exact = self.similarities(vector, positions[picked])
        order = np.argsort(-exact, kind="stable")[:count]
        return positions[picked[order]], exact[order]

    def _whole_file(self, query, rough_pass: str):
        """Every row of the file scored against a float16 query, as float16 (rough: see best)."""
        import torch

        if rough_pass != "int8":
            return torch.from_numpy(self.file.vectors) @ query
        _, _, twin, scales = self._twin()
        return torch._weight_int8pack_mm(query.view(1, -1).bfloat16(), twin, scales).view(-1).half()

    def _twin(self) -> tuple:
        """The file's int8 twin: (array, scale, as a tensor, per-row scales for torch), loaded once."""
        import torch

        if self._int8 is None:
            # The file's own rows are now read only a few at a time (those scored again): without
            # readahead, each brings in its page rather than the neighbouring 128 KB (bench.scale).
            with contextlib.suppress(AttributeError, OSError, ValueError):
                self.file.vectors._mmap.madvise(mmap.MADV_RANDOM)
            twin, scale = quantised(self.file)
            self._int8 = (
                twin,
                scale,
                torch.from_numpy(twin),
                torch.full((len(twin),), 1 / scale, dtype=torch.bfloat16),
            )
        return self._int8

    def matrix(self) -> np.ndarray:
        """Every vector as float32, in the order of ids (a full copy: for the duplicate scan, not for pages)."""
        import torch

        # torch's allocation, not numpy's: a fresh 2 GB numpy array took 9 s to fault in on a 2-core
        # VM where torch's took under a second (its large blocks get transparent huge pages).
        out = torch.empty((len(self.ids), self.dimension), dtype=torch.float32)
        for start in range(0, len(self.ids), 8192):  # 8 MB slices: reused by the heap, not mapped afresh
            out[start : start + 8192] = torch.from_numpy(self.take(np.arange(start, min(start + 8192, len(self.ids)))))
        return out.numpy()


def _top(scores, count: int):
    """Indices of count of the largest scores (any order).

    torch.topk took 7-8 ms over a million float16 similarities; a threshold from every
    hundredth score keeps a few hundred candidates in ~1 ms, and topk among those.
    """
    import torch

    step = len(scores) // 10_000
    if step >= 20:
        sample = scores[::step].float()
        rank = min(len(sample), 4 * count // step + 3)  # ~rank x step scores lie above it: several times count
        floor = torch.topk(sample, rank, sorted=True).values[-1]
        candidates = torch.nonzero(scores >= floor).flatten()
        if len(candidates) >= count:  # else the sample was unlucky: the plain way
            return candidates[torch.topk(scores[candidates], count, sorted=False).indices]
    return torch.topk(scores, count, sorted=False).indices


# A file is rewritten when more photos than this (or than 2% of it) are missing from it, or
# when it holds twice the rows asked for; until then the newer vectors are read from SQLite.
REWRITE_AT = 2_000


def table_for(ids: np.ndarray, model: str) -> tuple[np.ndarray, VectorTable]:
    """The vectors of these photos (ids sorted): (which ids have one, a table of those ids)."""
    from gallery import vectors as stored_vectors

    file = current(model)
    position_rows = np.full(len(ids), -1, dtype=np.int64)
    known = np.zeros(len(ids), dtype=bool)
    if file is not None and len(file.ids) and len(ids):
        found = np.searchsorted(file.ids, ids).clip(0, len(file.ids) - 1)
        known = file.ids[found] == ids
        position_rows[known] = found[known]
    missing = stored_vectors.load(ids[~known].tolist())
    dimension = file.vectors.shape[1] if file is not None else len(next(iter(missing.values()), ()))
    has = known.copy()
    extra_rows = []
    for position in np.flatnonzero(~known):
        vector = missing.get(int(ids[position]))
        if vector is not None and len(vector) == dimension:
            position_rows[position] = -1 - len(extra_rows)
            extra_rows.append(vector)
            has[position] = True
    extra = np.array(extra_rows, dtype=DTYPE).reshape(len(extra_rows), dimension)
    table = VectorTable(ids[has], file, position_rows[has], extra)
    stale = file is None or len(extra) > max(REWRITE_AT, len(file.ids) // 50) or len(file.ids) > 2 * len(table) + 1000
    if stale and len(table):
        file = write(model, table.ids, table.take)
        table = VectorTable(table.ids, file, np.arange(len(table), dtype=np.int64), extra[:0])
    return has, table
