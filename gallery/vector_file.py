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
import functools
import hashlib
import io
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from gallery.models import LibraryVersion

DTYPE = np.float16
# Scoring a gathered row costs about as much as scoring this many rows in a pass over the file (bench.scale).
GATHER_COST = 16
# A rough pass's scores are off by ~1e-4 (float16), ~0.002 (int8) or ~0.004 (int4): this many more of
# its best are scored again from the file (reading a few hundred rows, well under a millisecond).
SHORTLIST_MORE = {"fp16": 0, "int8": 224, "int4": 480}
# Gathers of up to this many rows read them from the file instead of its mapping, so a worker's memory
# holds only the pages it passes over (a few hundred 1 KB reads from the page cache: ~0.4 ms).
READ_AT = 4096
# ...when the file is at least this large: a smaller one's pages cost a worker little, and a read per
# row cost more than the whole pass of a search at 10,000 photos (bench.pages).
READ_FROM = 64 << 20
TILE_ROWS = 16  # rows of a tile of the int4 twin (gallery/int4.c)
# A narrow filter's rows are gathered and scored this many at a time: 4 MB of int8, under glibc's
# mapping threshold (gallery/apps.py), so the buffer comes back from the heap search after search,
# where one gather of every row was a fresh mapping faulted in page by page each time.
GATHER_ROWS = 8192


@dataclass(frozen=True)
class VectorFile:
    number: int
    ids: np.ndarray  # int64, sorted, memory-mapped
    vectors: np.ndarray  # float16 (len(ids), dimension), memory-mapped; row i is the vector of ids[i]
    stem: Path
    source: io.FileIO  # the vectors' file, open: rows read from it even after a newer file replaced it


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
        largest = max((float(torch.from_numpy(_rows(file, part)).abs().max()) for part in slices), default=0.0)
        scale = 127.0 / max(largest, 1e-6)
        with _publishing(scale_path, path) as (scale_partial, partial):
            out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.int8, shape=file.vectors.shape)
            for part in slices:
                rows = torch.from_numpy(_rows(file, part)).float().mul_(scale).round_()
                out[part] = rows.to(torch.int8).numpy()
            out.flush()
            del out
            with open(scale_partial, "wb") as scale_out:  # a file object: np.save would add ".npy" to a name
                np.save(scale_out, np.float32(scale))
    return np.load(path, mmap_mode="c"), float(np.load(scale_path))


@functools.cache
def int4_kernel() -> str | None:
    """The faster on this CPU of gallery/int4.c's kernels that it can run, timed as search runs them
    (int4_scores) on 8,192 tiles, larger than the caches; None without the compiled extension
    (installed where there was no C compiler): search's int4 pass then reads the int8 twin."""
    try:
        from gallery import _int4
    except ImportError:
        return None
    kernels = _int4.kernels()
    if len(kernels) < 2:
        return kernels[0] if kernels else None
    tiles = np.full((8192, 512 // 64 * _group_bytes(64)), 0x37, dtype=np.uint8)  # scales of 0.45, not NaN
    vector = np.full(512, 512**-0.5, dtype=np.float32)
    seconds = dict.fromkeys(kernels, float("inf"))
    for _ in range(5):
        for kernel in kernels:
            started = time.perf_counter()
            int4_scores(tiles, vector, kernel=kernel)
            seconds[kernel] = min(seconds[kernel], time.perf_counter() - started)
    return min(seconds, key=seconds.get)


def int4_group(dimension: int) -> int | None:
    """How many components of a row share an int4 scale and least; None: the dimension cannot."""
    return next((group for group in (64, 32) if dimension % group == 0), None)


def _group_bytes(group: int) -> int:
    """A group's bytes in a tile: 64 for each 8 of its components, then 16 scales and 16 leasts."""
    return group // 8 * 64 + 64


def int4_quantise(rows) -> np.ndarray:
    """float rows (a torch tensor, n x dimension, n a multiple of TILE_ROWS, dimension of int4_group)
    as gallery/int4.c's tiles: (n / TILE_ROWS, bytes of a tile), uint8. Each group of a row keeps 16
    levels from its least component to its most."""
    import torch

    count, dimension = rows.shape
    group = int4_group(dimension)
    tiles, groups = count // TILE_ROWS, dimension // group
    grouped = rows.float().view(count, groups, group)
    least, most = grouped.amin(-1), grouped.amax(-1)
    scale = ((most - least) / 15).clamp_min_(1e-8)
    levels = ((grouped - least[..., None]) / scale[..., None]).round_().clamp_(0, 15).to(torch.uint8)
    # A group's chunks of 8 components: a row's first 4 in the low nibbles of its 4 bytes, the rest high.
    levels = levels.view(tiles, TILE_ROWS, groups, group // 8, 2, 4)
    packed = (levels[..., 0, :] | (levels[..., 1, :] << 4)).permute(0, 2, 3, 1, 4).reshape(tiles, groups, -1)
    scales = torch.stack([scale, least], -1).half().view(tiles, TILE_ROWS, groups, 2).permute(0, 2, 3, 1)
    scales = scales.contiguous().view(torch.uint8).view(tiles, groups, -1)
    return torch.cat([packed, scales], -1).view(tiles, -1).numpy()


def int4_query(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A query for gallery/int4.c: the vector in int8, each group's sum of it, and what the scores
    come multiplied by."""
    times = 127 / max(float(np.abs(vector).max()), 1e-12)
    query = np.rint(np.asarray(vector, dtype=np.float32) * times).astype(np.int8)
    return query, query.reshape(-1, int4_group(len(query))).sum(1, dtype=np.float32), times


def int4_twin(file: VectorFile) -> np.ndarray | None:
    """The file's vectors in 4 bits, as gallery/int4.c's tiles (int4_quantise; rows padded to
    TILE_ROWS), mapped: a little over a quarter of the file's bytes, which search's int4 pass reads.
    Written beside the file by its first reader, kept as long as the file; None without the kernel
    or for a dimension not of whole groups."""
    import torch

    count, dimension = file.vectors.shape
    group = int4_group(dimension)
    if int4_kernel() is None or group is None:
        return None
    path = file.stem.with_suffix(".int4-tiles.npy")
    try:
        return np.load(path, mmap_mode="c")
    except (OSError, ValueError):
        pass
    padded = -(-count // TILE_ROWS) * TILE_ROWS
    with _publishing(path) as (partial,), torch.inference_mode():
        out = np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.uint8, shape=(padded // TILE_ROWS, dimension // group * _group_bytes(group))
        )
        for start in range(0, padded, 65_536):
            rows = torch.zeros((min(65_536, padded - start), dimension))
            real = _rows(file, slice(start, min(start + len(rows), count)))
            rows[: len(real)] = torch.from_numpy(real)
            out[start // TILE_ROWS : (start + len(rows)) // TILE_ROWS] = int4_quantise(rows)
        out.flush()
        del out
    for before in file.stem.parent.glob(f"{file.stem.name}.int4-*.npy"):  # torch's layout, before gallery/int4.c
        if before != path:
            before.unlink(missing_ok=True)
    return np.load(path, mmap_mode="c")


def int4_scores(
    tiles: np.ndarray, vector: np.ndarray, listed: np.ndarray | None = None, *, kernel: str | None = None
) -> np.ndarray:
    """Rough scores (float32, off by ~0.004) of every row of the tiles, or of the listed tiles' rows
    (int64 tile numbers), against a unit vector: TILE_ROWS scores a tile. The tiles are cut in one
    part a torch thread, each scored by the kernel with the GIL let go."""
    import torch

    from gallery import _int4

    kernel, (query, sums, times) = kernel or int4_kernel(), int4_query(vector)
    count = len(tiles) if listed is None else len(listed)
    out = np.empty(count * TILE_ROWS, dtype=np.float32)
    group = int4_group(len(query))
    groups = len(query) // group
    bounds = np.linspace(0, count, min(torch.get_num_threads(), max(1, count // 256)) + 1).astype(int)

    def score(first: int, last: int) -> None:
        part = out[first * TILE_ROWS : last * TILE_ROWS]
        if listed is None:
            _int4.score(kernel, tiles, groups, group // 8, query, sums, part, first, last - first)
        else:
            _int4.score(kernel, tiles, groups, group // 8, query, sums, part, 0, last - first, listed[first:last])

    list(_pool().map(score, bounds[:-1], bounds[1:]))
    out *= 1 / times
    return out


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """This process's threads for int4_scores, as many as torch's (both cores, unless set lower)."""
    import torch

    return ThreadPoolExecutor(max(1, torch.get_num_threads()), thread_name_prefix="int4")


# A forked child (a worker started by fork) has none of its parent's threads: it makes its own pool.
os.register_at_fork(after_in_child=_pool.cache_clear)


@contextlib.contextmanager
def _publishing(*paths: Path, durable: bool = False) -> Iterator[tuple[Path, ...]]:
    """Names to write these files under; once the block has written them all, each is renamed to its
    path in the order given, so a reader that finds the last one finds them complete. Two writers at
    once write apart, and a failure leaves no partial file. durable: flushed to disk first."""
    partials = tuple(path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial") for path in paths)
    try:
        yield partials
        for partial, path in zip(partials, paths):
            if durable:
                _fsync(partial)
            os.replace(partial, path)
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)


def _rows(file: VectorFile, part: slice) -> np.ndarray:
    """A run of the file's rows, read (not mapped): writing a twin leaves none of the file's pages
    in the writer's memory, where a web worker that wrote one kept all of them."""
    start, stop, _ = part.indices(len(file.ids))
    rows = np.empty((max(stop - start, 0), file.vectors.shape[1]), dtype=DTYPE)
    if os.preadv(file.source.fileno(), [rows], _row_start(file, start)) != rows.nbytes:
        raise OSError(f"{file.stem}: the vector file is shorter than its header says")
    return rows


def _row_start(file: VectorFile, row: int) -> int:
    """Where a row of the file's vectors starts, in bytes from the file's start (after its header)."""
    return file.vectors.offset + row * file.vectors.shape[1] * np.dtype(DTYPE).itemsize


# preadv2's flag (Linux) that reads only what the page cache holds; 0 where the system has none.
_NOWAIT = getattr(os, "RWF_NOWAIT", 0) if hasattr(os, "posix_fadvise") else 0


def _read_if_cached(source: int, into: np.ndarray, start: int) -> bool:
    """Fill into from start if the page cache holds those bytes; False when that would wait for the disk."""
    global _NOWAIT
    try:
        return os.preadv(source, [into], start, _NOWAIT) == into.nbytes
    except BlockingIOError:
        return False
    except OSError:  # a file system that cannot: every row is read the plain way from now on
        _NOWAIT = 0
        return False


# When this process last started reading a file into the page cache (read_ahead), by path.
_read_ahead: dict[Path, float] = {}
_read_ahead_lock = threading.Lock()
# A search that finds this many of its rows out of the page cache has the file read ahead again
# (a reindex, or other files, took the cache), at most once a minute per file and process.
READ_AGAIN_MISSING = 64
READ_AGAIN_AFTER = 60.0


def read_ahead(file: VectorFile, *, again: bool = False) -> threading.Thread | None:
    """Read the file's vectors into the page cache in a background thread, once per file and process
    (again: once more, if the last was over READ_AGAIN_AFTER seconds ago).

    A search scores ~1,000 rows again from the file, each at a random place: with the file out
    of the page cache (a server just started) every search waited for the disk, and searching
    warms it a thousand rows at a time. posix_fadvise(WILLNEED) reads only the first few
    megabytes ahead, so the thread reads the file itself, a slice at a time, into one reused
    buffer (the page cache keeps the pages, shared and reclaimable; the process maps none).
    Returns the thread, or None when this process read the file before (with again: too recently).
    """
    path = Path(file.source.name)
    with _read_ahead_lock:
        started = _read_ahead.get(path)
        if started is not None and (not again or time.monotonic() - started < READ_AGAIN_AFTER):
            return None
        _read_ahead[path] = time.monotonic()

    def read() -> None:
        buffer = bytearray(8 << 20)
        try:
            with open(path, "rb", buffering=0) as source:
                while source.readinto(buffer):
                    pass
        except OSError:  # gone (a newer file replaced it): nothing to warm
            pass

    thread = threading.Thread(target=read, name="vector file read-ahead", daemon=True)
    thread.start()
    return thread


def current(model: str) -> VectorFile | None:
    """The model's current file, mapped; None when there is none (or it vanished: a newer one replaced it)."""
    number = LibraryVersion.objects.filter(name=_key(model)).values_list("version", flat=True).first()
    if not number:
        return None
    stem = _stem(model, number)
    try:
        ids = np.load(stem.with_suffix(".ids.npy"), mmap_mode="c")
        vectors = np.load(stem.with_suffix(".vectors.npy"), mmap_mode="c")
        source = open(stem.with_suffix(".vectors.npy"), "rb", buffering=0)  # noqa: SIM115 (kept with the file)
    except (OSError, ValueError):
        return None
    # Mapped copy-on-write ("c") so torch takes the arrays without a copy or a read-only warning;
    # nothing writes to them, and unwritten pages stay shared.
    if ids.ndim != 1 or vectors.ndim != 2 or len(ids) != len(vectors) or vectors.dtype != DTYPE:
        return None
    return VectorFile(number, ids, vectors, stem, source)


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
    paths = stem.with_suffix(".vectors.npy"), stem.with_suffix(".ids.npy")
    with _publishing(*paths, durable=True) as (partial, ids_partial):  # readers never see half a file
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=DTYPE, shape=(len(ids), first.shape[1]))
        for start in range(0, len(ids), 16_384):
            positions = np.arange(start, min(start + 16_384, len(ids)))
            out[positions[0] : positions[-1] + 1] = vectors_at(positions)
        out.flush()
        del out
        with open(ids_partial, "wb") as out_ids:  # a file object: np.save would add ".npy" to a name
            np.save(out_ids, np.asarray(ids, dtype=np.int64))
    LibraryVersion.objects.update_or_create(name=_key(model), defaults={"version": number})
    # Processes still reading an older file keep their mapping (Linux frees it when they let go).
    for old in folder.glob(f"{_digest(model)}-*"):
        if not old.name.startswith(stem.name + "."):
            old.unlink(missing_ok=True)
    found = current(model)
    assert found is not None and found.number == number
    quantised(found)
    int4_twin(found)
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
        # Every row of the file is ids' row in order, the newer rows after them (nothing gone): a pass's
        # scores are the table's without gathering.
        in_file = len(file.ids) if file is not None else 0
        self.file_then_newer = (
            file is not None
            and len(ids) == in_file + len(extra)
            and bool((position_rows[:in_file] == np.arange(in_file)).all())
            and bool((position_rows[in_file:] < 0).all())
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
            row_by_row = in_file.sum() <= READ_AT and self.file.vectors.nbytes >= READ_FROM
            taken[in_file] = self._read(rows[in_file]) if row_by_row else self.file.vectors[rows[in_file]]
        if not in_file.all():
            taken[~in_file] = self.extra[-1 - rows[~in_file]]
        return taken

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the file read from it (the page cache), not through the mapping (see READ_AT).

        Rows the page cache does not hold (a server just started, or the cache went to other
        files) are asked of the disk all at once before any is read: one by one, each waiting
        for the disk, they doubled the time of a search that scores ~1,000 rows again (bench.scale).
        """
        source, taken = self.file.source.fileno(), np.empty((len(rows), self.dimension), dtype=DTYPE)
        starts = [_row_start(self.file, row) for row in rows.tolist()]
        if _NOWAIT:
            missing = [row for row, start in enumerate(starts) if not _read_if_cached(source, taken[row], start)]
            for row in missing:
                os.posix_fadvise(source, starts[row], taken[row].nbytes, os.POSIX_FADV_WILLNEED)
            if len(missing) >= READ_AGAIN_MISSING:  # the cache lost the file: the next searches need all of it
                read_ahead(self.file, again=True)
        else:
            missing = range(len(starts))
        for row in missing:
            if os.preadv(source, [taken[row]], starts[row]) != taken[row].nbytes:
                raise OSError(f"{self.file.stem}: the vector file is shorter than its header says")
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
        self, vector: np.ndarray, count: int, within: np.ndarray | None = None, *, rough_pass: str = "fp16"
    ) -> tuple[np.ndarray, ...]:
        """The count positions most like a unit vector, best first, and their similarities; within:
        the positions that may be picked, as indices into ids or a boolean mask over them (None: all).

        A first pass in float16 (torch reads the half-size rows directly; numpy would convert
        them element by element) rounds each score to ~1e-4, so its best few are scored again
        in float32 and the order comes from those. rough_pass="int8" or "int4": the first pass
        reads the file's int8 or int4 twin instead (a half or a quarter of the bytes, scores off
        by ~0.002 or ~0.004), more of its best are scored again, and the file's own rows are read
        only for those. int4 falls back to int8 where the compiled kernel (gallery/int4.c) is missing
        or the dimension is not a multiple of 32.
        """
        import torch  # not at import: web processes start without it until a search needs it

        mask = within if within is not None and within.dtype == bool else None
        positions = within if mask is None else None
        wanted = len(self.ids) if within is None else len(positions) if mask is None else int(np.count_nonzero(mask))
        if wanted == 0 or count <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if mask is not None and not self._masks_a_pass(wanted):  # listed: their rows are gathered
            positions, mask = np.flatnonzero(mask), None
        if rough_pass == "int4" and (self.file is None or self._int4 is None):
            rough_pass = "int8"
        query = torch.from_numpy(np.asarray(vector, dtype=DTYPE))
        with torch.inference_mode():
            rough, positions, among = self._rough(query, positions, mask, rough_pass)
            picked = _top(rough, min(wanted, 2 * count + 32 + SHORTLIST_MORE[rough_pass]), among).numpy()
        chosen = picked if positions is None else positions[picked]
        exact = self.similarities(vector, chosen)
        order = np.argsort(-exact, kind="stable")[:count]
        return chosen[order], exact[order]

    def _masks_a_pass(self, wanted: int) -> bool:
        """Whether wanted of the ids are scored by one pass over the file, the others then left out
        by a mask (a wide filter), rather than gathered."""
        return self.file is not None and self.file_then_newer and wanted * GATHER_COST > len(self.file.ids)

    def _rough(self, query, positions: np.ndarray | None, mask: np.ndarray | None, rough_pass: str) -> tuple:
        """Rough scores, the positions they are of (None: every position, in order) and which of them
        may be picked (a boolean mask over the scores; None: all). The ids to score are given as
        positions or, where a pass over the file scores them (_masks_a_pass), as a mask; neither: all."""
        import torch

        if self.file is None:
            positions = np.arange(len(self.ids)) if positions is None else positions
            return torch.from_numpy(self.take(positions)) @ query, positions, None
        if positions is not None and (gathered := self._gathered(positions, query, rough_pass)) is not None:
            return gathered, positions, None
        # One pass over the whole file, in its order, beats gathering this many of its rows.
        whole_file = self._whole_file(query, rough_pass)
        if not self.file_then_newer:
            positions = np.arange(len(self.ids)) if positions is None else positions
            return self._in_file_or_extra(positions, query, whole_file.__getitem__), positions, None
        rough = whole_file  # in the table's order: rows outside the filter are left out by _top, where
        if len(self.extra):  # gathering most of a million of them cost milliseconds
            newer = torch.from_numpy(self.extra[-1 - self.position_rows[len(whole_file) :]]) @ query
            rough = torch.cat([whole_file, newer.to(whole_file.dtype)])
        if positions is not None:
            mask = np.zeros(len(self.ids), dtype=bool)
            mask[positions] = True
        return rough, None, mask

    def _gathered(self, positions: np.ndarray, query, rough_pass: str):
        """Rough scores of ids[positions] from their own rows (a narrow filter's), or None when a
        pass over the whole file costs less than gathering them."""
        import torch

        if len(positions) * GATHER_COST > len(self.file.ids):
            return None
        if rough_pass == "int4":
            # None where the photos are in most tiles: then the pass. The int8 twin's rows, gathered
            # there before, are in pages no pass keeps mapped: faulted in afresh for every search, they
            # took longer than the pass (a filter on 1-3% of a million, docs/architecture.md).
            return self._int4_tiles(positions, query)
        if rough_pass == "int8":  # the int8 twin's rows: the file's pages stay cold
            return self._int8_rows(positions, query)
        return torch.from_numpy(self.take(positions)) @ query

    def _int8_rows(self, positions: np.ndarray, query):
        """Rough scores of ids[positions] from the int8 twin's rows (the twin that int8 passes read),
        gathered and multiplied by torch."""
        import torch

        _, _, twin, scales = self._twin()
        as_bfloat16 = query.view(1, -1).bfloat16()

        def scores_of_rows(rows):
            scores = torch.empty(len(rows), dtype=torch.bfloat16)
            for start in range(0, len(rows), GATHER_ROWS):  # in pieces: see GATHER_ROWS
                gathered = twin.index_select(0, torch.from_numpy(rows[start : start + GATHER_ROWS]))
                scores[start : start + len(gathered)] = torch._weight_int8pack_mm(
                    as_bfloat16, gathered, scales[: len(gathered)]
                ).view(-1)
            return scores

        return self._in_file_or_extra(positions, query, scores_of_rows)

    def _in_file_or_extra(self, positions: np.ndarray, query, scores_of_rows):
        """Rough scores of ids[positions]: scores_of_rows(file rows) for those in the file, the rest computed."""
        import torch

        rows = self.position_rows[positions]
        in_file = rows >= 0
        rough = torch.empty(len(positions), dtype=torch.float16)
        rough[in_file] = scores_of_rows(rows[in_file]).half()
        if not in_file.all():
            rough[~in_file] = torch.from_numpy(self.extra[-1 - rows[~in_file]]) @ query
        return rough

    def _whole_file(self, query, rough_pass: str):
        """Every row of the file scored against a float16 query (rough: see best): float16 from the
        file, bfloat16 from the int8 twin (torch's product gives it, and a conversion cost ~0.3 ms a million),
        float32 from the int4 twin (gallery/int4.c)."""
        import torch

        if rough_pass == "int4":
            return torch.from_numpy(int4_scores(self._int4, query.float().numpy())[: len(self.file.ids)])
        if rough_pass == "int8":
            _, _, twin, scales = self._twin()
            return torch._weight_int8pack_mm(query.view(1, -1).bfloat16(), twin, scales).view(-1)
        return torch.from_numpy(self.file.vectors) @ query

    def _int4_tiles(self, positions: np.ndarray, query):
        """Rough scores of ids[positions] from the int4 tiles that hold them, scored where they lie,
        when those are few (a narrow filter); None when a pass over the whole twin costs less."""
        import torch

        tiles, file_rows = self._int4, self.position_rows[positions]
        held = np.zeros(len(tiles), dtype=bool)  # marks, not np.unique: no sort of the rows
        held[file_rows[file_rows >= 0] // TILE_ROWS] = True
        listed = np.flatnonzero(held)
        if len(listed) * 4 > len(tiles):
            return None
        scores = torch.from_numpy(int4_scores(tiles, query.float().numpy(), listed))

        def scores_of_rows(rows):
            return scores[np.searchsorted(listed, rows // TILE_ROWS) * TILE_ROWS + rows % TILE_ROWS]

        return self._in_file_or_extra(positions, query, scores_of_rows)

    @functools.cached_property
    def _int4(self) -> np.ndarray | None:
        """The file's int4 twin (int4_twin), mapped once; None when there is none."""
        return int4_twin(self.file)

    def _twin(self) -> tuple:
        """The file's int8 twin: (array, scale, as a tensor, per-row scales for torch), loaded once."""
        import torch

        if self._int8 is None:
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


def _top(scores, count: int, among: np.ndarray | None = None):
    """Indices of count of the largest scores (any order); among: which may be picked (a boolean
    mask over the scores, holding at least count; None: all).

    torch.topk took 7-8 ms over a million float16 similarities; a threshold from every
    hundredth score keeps a few hundred candidates in ~1 ms, and topk among those. numpy
    lists the candidates: torch.nonzero took longer than the comparison over the million.
    The mask is applied to the sample and the candidates: setting the other scores to -inf
    first (masked_fill_) cost more than all the rest of this.
    """
    import torch

    step = len(scores) // 10_000
    if step >= 20:
        sample = scores[::step].float()
        if among is not None:
            sample = sample[torch.from_numpy(among[::step])]
        rank = min(len(sample), 4 * count // step + 3)  # ~rank x step scores lie above it: several times count
        if rank:
            above = _at_least(scores, torch.topk(sample, rank, sorted=True).values[-1])
            candidates = torch.from_numpy(np.flatnonzero(above if among is None else above & among))
            if len(candidates) >= count:  # else the sample was unlucky: the plain way
                return candidates[torch.topk(scores[candidates], count, sorted=False).indices]
    if among is not None:
        scores = scores.masked_fill(torch.from_numpy(~among), float("-inf"))
    return torch.topk(scores, count, sorted=False).indices


def _at_least(scores, floor) -> np.ndarray:
    """scores >= floor (a value of theirs), as a numpy mask.

    Above zero a 16-bit float orders as its bits read as an integer do (a negative one has the
    sign bit: below as an integer too), and numpy compares int16 several times faster than
    torch compares the floats (docs/architecture.md)."""
    import torch

    if scores.element_size() == 2 and floor > 0:
        bits = int(floor.to(scores.dtype).view(torch.int16))
        return scores.contiguous().view(torch.int16).numpy() >= bits
    return (scores >= floor).numpy()


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
