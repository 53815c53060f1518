"""The shared, memory-mapped vector file: what search reads instead of a copy per process."""

import subprocess
import sys

import numpy as np
import pytest

from gallery import vector_file
from gallery import vectors as stored_vectors
from gallery.models import Image
from search.columns import build_columns, column_cache
from search.embeddings import model_name
from search.query import nearest
from tests.factories import make_photos

pytestmark = pytest.mark.django_db

DIMENSION = 32
NO_KERNEL = "gallery/int4.c was not compiled (no C compiler at install)"


def unit(rng, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def embedded_photos(vectors: np.ndarray) -> list[int]:
    photos = make_photos(len(vectors))
    Image.objects.filter(pk__in=[p.pk for p in photos]).update(
        embedding_state=Image.Embedding.DONE, embedding_model=model_name()
    )
    stored_vectors.save({photo.pk: vector for photo, vector in zip(photos, vectors)})
    return [photo.pk for photo in photos]


def test_the_first_read_writes_the_file_and_a_second_process_maps_the_same_one(settings):
    ids = embedded_photos(unit(np.random.default_rng(0), 40))
    first = build_columns(1)
    assert first.vectors.file is not None and len(first.vectors.extra) == 0
    files = sorted(p.name for p in settings.IMGSIM_VECTOR_DIR.iterdir())
    assert [name.split(".", 1)[1] for name in files] == [
        "ids.npy",
        *(["int4-tiles.npy"] if vector_file.int4_kernel() else []),
        "int8-scale.npy",
        "int8.npy",
        "vectors.npy",
    ]
    again = build_columns(2)  # as another worker would: same rows, nothing written
    assert again.vectors.file.number == first.vectors.file.number
    assert sorted(p.name for p in settings.IMGSIM_VECTOR_DIR.iterdir()) == files
    assert isinstance(again.vectors.file.vectors, np.memmap)
    assert again.ids.tolist() == sorted(ids)


def test_new_photos_are_read_from_sqlite_until_enough_of_them_make_a_new_file(settings, monkeypatch):
    rng = np.random.default_rng(1)
    embedded_photos(unit(rng, 30))
    old = build_columns(1).vectors.file
    newer = unit(rng, 3)
    new_ids = embedded_photos(newer)
    columns = build_columns(2)
    assert columns.vectors.file.number == old.number and len(columns.vectors.extra) == 3
    hits = nearest(newer[1], top_k=1)  # a photo only in memory is found like any other
    assert hits[0].image_id == new_ids[1] and hits[0].similarity == pytest.approx(1.0, abs=1e-3)

    monkeypatch.setattr(vector_file, "REWRITE_AT", 2)
    columns = build_columns(3)
    assert columns.vectors.file.number != old.number and len(columns.vectors.extra) == 0
    assert len(columns.vectors.file.ids) == 33
    old_stem = vector_file._stem(model_name(), old.number).name
    assert not any(p.name.startswith(old_stem + ".") for p in settings.IMGSIM_VECTOR_DIR.iterdir())
    assert np.allclose(columns.vectors.take(np.arange(33))[-3:], newer, atol=1e-3)


def test_a_replaced_vector_is_never_served_from_the_old_file():
    rng = np.random.default_rng(2)
    ids = embedded_photos(unit(rng, 20))
    build_columns(1)
    replacement = unit(rng, 1)[0]
    stored_vectors.save({ids[4]: replacement})
    column_cache.clear()
    hits = nearest(replacement, top_k=1)
    assert hits[0].image_id == ids[4] and hits[0].similarity == pytest.approx(1.0, abs=1e-3)


def test_a_vanished_or_damaged_file_is_written_again(settings):
    rng = np.random.default_rng(3)
    vectors = unit(rng, 25)
    ids = embedded_photos(vectors)
    damaged = build_columns(1).vectors.file.number
    for path in settings.IMGSIM_VECTOR_DIR.iterdir():
        path.write_bytes(b"not a numpy file")
    columns = build_columns(2)
    assert columns.vectors.file.number != damaged
    assert nearest(vectors[7], top_k=1)[0].image_id == ids[7]
    for path in settings.IMGSIM_VECTOR_DIR.iterdir():
        path.unlink()
    column_cache.clear()
    assert nearest(vectors[9], top_k=1)[0].image_id == ids[9]
    assert columns.vectors.file.number != vector_file.current(model_name()).number


def test_a_twin_that_fails_half_written_leaves_no_file_and_the_next_reader_writes_it(settings, monkeypatch):
    """A full disk or a crash while writing the int8 or int4 twin: no partial file stays behind, and
    nothing half-written is ever read as a twin."""
    rng = np.random.default_rng(6)
    ids = np.arange(1, 301, dtype=np.int64)
    vectors = unit(rng, len(ids))
    file = vector_file.write("twins-test", ids, lambda at: vectors[at].astype(vector_file.DTYPE))
    for twin_file in settings.IMGSIM_VECTOR_DIR.glob("*.int[48]*"):  # the writer made them: as a file from before
        twin_file.unlink()
    written = set(settings.IMGSIM_VECTOR_DIR.iterdir())

    read_rows = vector_file._rows

    def full_disk_once_writing(file, part):  # fails while a partial twin is on disk
        if any(path.suffix == ".partial" for path in settings.IMGSIM_VECTOR_DIR.iterdir()):
            raise OSError(28, "No space left on device")
        return read_rows(file, part)

    twins = [vector_file.quantised] + ([vector_file.int4_twin] if vector_file.int4_kernel() else [])
    for twin in twins:
        with monkeypatch.context() as patched:
            patched.setattr(vector_file, "_rows", full_disk_once_writing)
            with pytest.raises(OSError, match="No space left"):
                twin(file)
        assert set(settings.IMGSIM_VECTOR_DIR.iterdir()) == written
        assert twin(file) is not None  # written whole this time
        written = set(settings.IMGSIM_VECTOR_DIR.iterdir())
    assert not [path for path in settings.IMGSIM_VECTOR_DIR.iterdir() if path.suffix == ".partial"]


@pytest.mark.parametrize("cache", ["holds the rows", "dropped the rows", "cannot say (no RWF_NOWAIT)"])
def test_rows_scored_again_are_read_right_whatever_the_page_cache_holds(cache, monkeypatch):
    """A server just started, or a page cache that went to other files: rows missing from it are
    asked of the disk together, then read; a file system without RWF_NOWAIT reads them plainly."""
    import os

    from gallery.vector_file import VectorTable

    rng = np.random.default_rng(7)
    ids = np.arange(1, 5_001, dtype=np.int64)
    vectors = unit(rng, len(ids)).astype(vector_file.DTYPE)
    file = vector_file.write("cache-test", ids, lambda at: vectors[at])
    table = VectorTable(ids, file, np.arange(len(ids)), np.zeros((0, DIMENSION), dtype=vector_file.DTYPE))
    asked = []
    monkeypatch.setattr(vector_file, "_NOWAIT", vector_file._NOWAIT)  # put back after the fallback below
    if cache == "dropped the rows":
        os.posix_fadvise(file.source.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        # and as if the drop took (it cannot drop pages a mapping holds): nothing read without waiting
        monkeypatch.setattr(vector_file, "_read_if_cached", lambda source, into, start: False)
        advise = os.posix_fadvise

        def counted(fd, start, size, how):
            asked.append(start)
            return advise(fd, start, size, how)

        monkeypatch.setattr(os, "posix_fadvise", counted)
    elif cache == "cannot say (no RWF_NOWAIT)":
        preadv = os.preadv

        def without_flags(fd, buffers, offset, *flags):
            if flags:
                raise OSError(95, "Operation not supported")
            return preadv(fd, buffers, offset)

        monkeypatch.setattr(os, "preadv", without_flags)
    rows = np.sort(rng.choice(len(ids), 700, replace=False))
    assert np.array_equal(table._read(rows), vectors[rows])
    assert np.array_equal(table._read(rows[:3]), vectors[rows[:3]])  # and again, the fallback remembered
    assert len(asked) == (703 if cache == "dropped the rows" else 0)  # every row asked for, once
    if cache == "cannot say (no RWF_NOWAIT)":
        assert vector_file._NOWAIT == 0


def test_a_file_is_read_into_the_page_cache_once_by_each_process_and_again_when_the_cache_lost_it(monkeypatch):
    """A server just started: the file every search reads rows of is read ahead, in the background."""
    import os

    rng = np.random.default_rng(9)
    ids = np.arange(1, 400_001, dtype=np.int64)  # 25 MB: well beyond what the kernel reads ahead of one read
    vectors = unit(rng, len(ids)).astype(vector_file.DTYPE)
    file = vector_file.write("read-ahead-test", ids, lambda at: vectors[at])
    with open(file.stem.with_suffix(".vectors.npy"), "rb") as written:
        os.fsync(written.fileno())  # written pages stay in the cache until they are on disk
        os.posix_fadvise(written.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    row = np.empty(DIMENSION, dtype=vector_file.DTYPE)
    # Asking about a row makes the kernel read it (and what follows): only the last row is asked before.
    if vector_file._read_if_cached(file.source.fileno(), row, vector_file._row_start(file, len(ids) - 1)):
        pytest.skip("this file system keeps the file in memory (or cannot tell what the page cache holds)")
    vector_file.read_ahead(file).join(timeout=60)
    for at in (0, len(ids) // 3, 2 * len(ids) // 3):
        assert vector_file._read_if_cached(file.source.fileno(), row, vector_file._row_start(file, at))
        assert np.array_equal(row, vectors[at])
    assert vector_file.read_ahead(file) is None  # once per file and process

    # The page cache lost the file later (a reindex wrote gigabytes): a search missing many of its
    # rows has it read ahead again, once a minute at most.
    with open(file.stem.with_suffix(".vectors.npy"), "rb") as written:
        os.posix_fadvise(written.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    assert not vector_file._read_if_cached(file.source.fileno(), row, vector_file._row_start(file, len(ids) - 1))
    table = vector_file.VectorTable(ids, file, np.arange(len(ids)), np.zeros((0, DIMENSION), dtype=vector_file.DTYPE))
    started = []
    read_again = vector_file.read_ahead
    monkeypatch.setattr(vector_file, "read_ahead", lambda *args, **kwargs: started.append(read_again(*args, **kwargs)))
    rows = np.sort(np.random.default_rng(10).choice(len(ids), 700, replace=False))
    monkeypatch.setattr(vector_file, "READ_AGAIN_AFTER", 0.0)  # as if the first read was a while ago
    assert np.array_equal(table._read(rows), vectors[rows])
    assert len(started) == 1 and started[0] is not None
    started[0].join(timeout=60)
    for at in (0, len(ids) // 3, 2 * len(ids) // 3):
        assert vector_file._read_if_cached(file.source.fileno(), row, vector_file._row_start(file, at))
    monkeypatch.setattr(vector_file, "READ_AGAIN_AFTER", 60.0)
    with open(file.stem.with_suffix(".vectors.npy"), "rb") as written:
        os.posix_fadvise(written.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    table._read(rows)
    assert len(started) == 2 and started[1] is None  # within the minute: not again


def test_the_best_by_the_file_are_the_best_by_float32_scores_of_its_float16_vectors():
    rng = np.random.default_rng(4)
    vectors = unit(rng, 3000)
    stored = vectors.astype(np.float16).astype(np.float32)  # what the file holds
    ids = np.array(embedded_photos(vectors))
    table = build_columns(1).vectors
    for query in unit(rng, 20):
        exact = np.argsort(-(stored @ query), kind="stable")[:10]
        positions, scores = table.best(query, 10)
        assert ids[positions].tolist() == ids[exact].tolist()
        assert np.allclose(scores, (vectors @ query)[exact], atol=1e-3)  # and close to the photos' own vectors
        subset = np.flatnonzero(rng.random(len(ids)) < 0.1)
        exact = subset[np.argsort(-(stored[subset] @ query), kind="stable")[:5]]
        assert table.best(query, 5, subset)[0].tolist() == exact.tolist()


def test_workers_share_the_pages_of_one_file(tmp_path):
    """Two processes mapping one file: the second's proportional share is about half its resident size."""
    path = tmp_path / "shared.npy"
    np.save(path, np.ones((8192, 512), dtype=np.float16))  # 8 MB
    reader = (
        "import numpy as np, sys\n"
        f"path = {str(path)!r}\n"
        "m = np.load(path, mmap_mode='c'); float(m.sum())\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
        "sizes, inside = {}, False\n"
        "for line in open('/proc/self/smaps'):\n"
        "    fields = line.split()\n"
        "    if '-' in fields[0] and len(fields) >= 5: inside = fields[-1] == path\n"
        "    elif inside and fields[0] in ('Rss:', 'Pss:'):\n"
        "        sizes[fields[0]] = sizes.get(fields[0], 0) + int(fields[1])\n"
        "print(sizes['Rss:'], sizes['Pss:'], flush=True)\n"
    )
    first = subprocess.Popen([sys.executable, "-c", reader], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    second = subprocess.Popen([sys.executable, "-c", reader], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "ready" and second.stdout.readline().strip() == "ready"
        first.stdin.write("\n")
        first.stdin.flush()
        rss_kb, pss_kb = map(int, first.stdout.readline().split())
    finally:
        for process in (first, second):
            process.kill()
            process.wait()
    # 8 MB of the file resident in both: each process's proportional share is half of it.
    assert rss_kb >= 8000
    assert pss_kb <= rss_kb * 0.55


def test_the_shortlist_of_a_large_pass_is_the_top_scores_even_when_the_sample_misleads():
    """_top thresholds at a sample's high rank instead of a topk over a million scores; it must
    still return exactly the largest, and fall back when the sample promised too few."""
    import torch

    from gallery.vector_file import _top

    scores = torch.from_numpy(np.random.default_rng(4).normal(size=400_000).astype(np.float16))
    expected = torch.topk(scores.float(), 52).values
    assert torch.equal(torch.sort(scores[_top(scores, 52)].float(), descending=True).values, expected)
    misleading = torch.zeros(200_000, dtype=torch.float16)
    misleading[::20] = torch.arange(10_000, dtype=torch.float16) / 10_000 + 1  # the sample is all the high ones
    picked = _top(misleading, 52)
    assert len(picked) == 52 and torch.equal(
        torch.sort(misleading[picked].float()).values, torch.sort(torch.topk(misleading.float(), 52).values).values
    )
    for dtype in (torch.bfloat16, torch.float32):  # the int4 and int8 passes' scores; all below zero
        for shifted in (scores.to(dtype), scores.to(dtype) - 20):
            expected = torch.topk(shifted.float(), 52).values
            assert torch.equal(torch.sort(shifted[_top(shifted, 52)].float(), descending=True).values, expected)
    # Among a wide filter's (a mask): the largest of those it keeps, none of the others, even when the
    # others hold the largest scores of all and the sampled ones are the filter's best.
    rng = np.random.default_rng(5)
    for among in (rng.random(len(scores)) < 0.66, np.arange(len(scores)) % 20 != 0, np.arange(len(scores)) % 20 == 0):
        kept = np.flatnonzero(among)
        others = scores.clone()
        others[torch.from_numpy(~among)] += 10  # what the filter leaves out scores best
        picked = _top(others, 52, among).numpy()
        assert among[picked].all() and len(set(picked.tolist())) == 52
        expected = torch.topk(others[torch.from_numpy(kept)].float(), 52).values
        assert torch.equal(torch.sort(others[picked].float(), descending=True).values, expected)


@pytest.mark.parametrize("kind", ["fp32", "bf16", "int8"])
def test_an_incremental_duplicate_scan_reads_the_shared_file_and_finds_what_a_full_scan_finds(kind, monkeypatch):
    from search.duplicates import scan

    rng = np.random.default_rng(5)
    vectors = unit(rng, 200)
    vectors[150:170] = vectors[:20] + 0.02 * rng.standard_normal((20, DIMENSION))  # second shots of older photos
    vectors[180] = vectors[175] + 0.02 * rng.standard_normal(DIMENSION)  # and one of a photo as new as it
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    older = embedded_photos(vectors[:150])
    build_columns(1)  # the file holds the older photos; the new ones are read from SQLite beside it
    embedded_photos(vectors[150:])
    from search import paths

    monkeypatch.setattr(paths, "block_dtype", lambda: kind)  # whichever product measured fastest
    monkeypatch.setattr(scan, "block_dtype", lambda: kind)
    full = {(p.a, p.b, p.tier) for p in scan.find_pairs() if p.b > older[-1]}
    assert len(full) == 21
    assert {(p.a, p.b, p.tier) for p in scan.find_pairs(since_id=older[-1])} == full
    file = vector_file.current(model_name())
    assert file.stem.with_suffix(".int8.npy").exists()  # quantised once, with the file
    assert {(p.a, p.b, p.tier) for p in scan.find_pairs() if p.b > older[-1]} == full  # the full scan reuses it


@pytest.mark.parametrize("kind", ["fp32", "bf16"])
def test_a_few_rows_against_many_find_every_pair_across_blocks_and_slices(kind, settings):
    """similar_to_all reuses its buffers from slice to slice and block to block: nothing stale may leak."""
    from search.similarity import similar_to_all

    settings.IMGSIM_DUPLICATE_BLOCK = 128  # three blocks of rows, the last one short
    rng = np.random.default_rng(6)
    vectors = unit(rng, 40_000)  # two full slices of columns (16,384 each) and a short one
    rows = np.sort(rng.choice(40_000, 300, replace=False))
    others = np.setdiff1d(np.arange(40_000), rows)
    partners = rng.choice(others, 300, replace=False)  # a second shot of each row, anywhere among the columns
    vectors[partners] = vectors[rows] + 0.03 * rng.standard_normal((300, DIMENSION))
    vectors[rows[1::7]] = vectors[rows[::7]][: len(rows[1::7])] + 0.03 * rng.standard_normal((43, DIMENSION))
    stored = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(vector_file.DTYPE)
    exact = stored.astype(np.float32)
    scores = exact[rows] @ exact.T
    row_set = set(rows.tolist())
    expected = {
        (int(rows[a]), int(b))
        for a, b in zip(*np.nonzero(scores >= 0.9))
        if b != rows[a] and (b not in row_set or b > rows[a])  # pairs among the rows once
    }
    assert len(expected) >= 300 + 40  # each row's second shot, and pairs among the rows once each
    found, done = set(), 0
    for done, i, j, similarity in similar_to_all(
        exact[rows], rows, len(stored), 0.9, kind=kind, columns_at=lambda at: stored[at], exact_at=lambda at: exact[at]
    ):
        found |= set(zip(i.tolist(), j.tolist()))
        assert (similarity >= 0.9).all()
    assert done == len(rows) and found == expected


@pytest.mark.parametrize("rough_pass", ["int8", "int4"])
def test_a_quantised_pass_finds_the_same_best_photos_as_the_float16_pass(rough_pass):
    from gallery.vector_file import VectorTable, quantised

    rng = np.random.default_rng(9)
    centres = unit(rng, 40)
    vectors = centres[rng.integers(0, 40, 20_000)] + 0.5 * rng.standard_normal((20_000, DIMENSION))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(1, 20_001, dtype=np.int64)
    file = vector_file.write("pass-test", ids, lambda at: vectors[at].astype(vector_file.DTYPE))
    twin, scale = quantised(file)
    assert np.abs(twin.astype(np.float32) / scale - vectors).max() < 1 / scale  # rounding, nothing clipped
    newer = unit(rng, 50)  # photos not yet in the file: the table holds them itself
    tables = [
        VectorTable(ids, file, np.arange(len(ids)), np.zeros((0, DIMENSION), dtype=vector_file.DTYPE)),
        VectorTable(
            np.arange(1, 20_051, dtype=np.int64),
            file,
            np.concatenate([np.arange(len(ids)), -1 - np.arange(50)]),
            newer.astype(vector_file.DTYPE),
        ),
        # Photos gone since the file was written: the rows a pass scores are gathered into the table's order.
        VectorTable(ids[100:], file, np.arange(100, len(ids)), np.zeros((0, DIMENSION), dtype=vector_file.DTYPE)),
    ]
    agreed = []
    for query in unit(rng, 30) * 0.3 + vectors[rng.integers(0, 20_000, 30)]:  # near photos and far from them
        query = (query / np.linalg.norm(query)).astype(np.float32)
        for table in tables:
            fewest = np.sort(rng.choice(len(table), 40, replace=False))  # int4: the blocks holding them
            few = np.sort(rng.choice(len(table), 800, replace=False))  # a narrow filter's rows, gathered
            many = np.sort(rng.choice(len(table), 15_000, replace=False))  # a wide one's: the others masked
            for positions in (None, fewest, few, many):
                float16 = table.best(query, 10, positions)
                quantised_pass = table.best(query, 10, positions, rough_pass=rough_pass)
                agreed.append(len(set(float16[0]) & set(quantised_pass[0])) / 10)
                assert np.allclose(np.sort(float16[1]), np.sort(quantised_pass[1]), atol=1e-3)  # both from the file
                assert positions is None or set(quantised_pass[0]) <= set(positions)
                if positions is not None:  # the same rows given as a mask, as search gives a filter's
                    mask = np.zeros(len(table), dtype=bool)
                    mask[positions] = True
                    assert table.best(query, 10, mask, rough_pass=rough_pass)[0].tolist() == quantised_pass[0].tolist()
    assert np.mean(agreed) >= 0.99
    # Scores of the new photos come from the table, not from the file's rows.
    best_new = tables[1].best(newer[3], 1, rough_pass=rough_pass)
    assert best_new[0].tolist() == [20_003] and best_new[1][0] == pytest.approx(1.0, abs=1e-3)


def _narrow_table(name: str, rng):
    """A table of 20,000 photos in a file and 40 newer ones it holds itself."""
    from gallery.vector_file import VectorTable

    ids = np.arange(1, 20_001, dtype=np.int64)
    vectors = unit(rng, len(ids))
    file = vector_file.write(name, ids, lambda at: vectors[at].astype(vector_file.DTYPE))
    newer = unit(rng, 40)
    table = VectorTable(
        np.arange(1, 20_041, dtype=np.int64),
        file,
        np.concatenate([np.arange(len(ids)), -1 - np.arange(40)]),
        newer.astype(vector_file.DTYPE),
    )
    return table, newer


def _agrees_with_float16(table, queries, positions, rough_pass):
    expected = [table.best(query, 10, positions) for query in queries]
    for query, (float16_best, float16_scores) in zip(queries, expected):
        found, scores = table.best(query, 10, positions, rough_pass=rough_pass)
        assert found.tolist() == float16_best.tolist()
        assert np.allclose(scores, float16_scores, atol=1e-3)
        assert set(found) <= set(positions)
    return found


def _refuse(what: str):
    def refused(*args, **kwargs):
        raise AssertionError(what)

    return refused


def test_a_narrow_filter_is_scored_from_its_own_rows_of_the_int8_twin(monkeypatch):
    """One photo in 25 (a category of a few percent), where search's pass reads the int8 twin:
    its rough scores come from those photos' rows, not from a pass over every row."""
    from gallery.vector_file import VectorTable

    rng = np.random.default_rng(12)
    table, newer = _narrow_table("narrow-test", rng)
    every_25th = np.arange(0, len(table), 25)  # 800 photos, two of them not yet in the file
    queries = [*unit(rng, 8), newer[25]]  # the last is the photo at position 20,025, not yet in the file
    monkeypatch.setattr(VectorTable, "_whole_file", _refuse("a pass over every row to score 800 photos"))
    monkeypatch.setattr(vector_file, "GATHER_ROWS", 128)  # gathered in several pieces
    found = _agrees_with_float16(table, queries, every_25th, "int8")
    assert found[0] == 20_025


def test_an_int4_filter_is_scored_from_the_tiles_holding_it_or_else_by_the_pass(monkeypatch):
    """Where search's pass reads the int4 twin, a filter's rough scores come from the tiles of it that
    hold its photos when those are few, and from the pass when it has a photo in most tiles: never
    from the int8 twin, whose pages no pass keeps mapped (faulted in afresh for every search)."""
    from gallery.vector_file import VectorTable, int4_kernel

    if int4_kernel() is None:
        pytest.skip(NO_KERNEL)
    rng = np.random.default_rng(13)
    table, newer = _narrow_table("int4-narrow-test", rng)
    queries = [*unit(rng, 8), newer[25]]
    monkeypatch.setattr(VectorTable, "_int8_rows", _refuse("the int8 twin's rows"))
    in_few_tiles = np.concatenate([np.arange(0, 3_000, 7), [20_025]])  # 188 of 1,250 tiles, and a newer photo
    whole_file = VectorTable._whole_file
    monkeypatch.setattr(VectorTable, "_whole_file", _refuse("a pass over every row for photos in a few tiles"))
    assert _agrees_with_float16(table, queries, in_few_tiles, "int4")[0] == 20_025
    monkeypatch.setattr(VectorTable, "_whole_file", whole_file)
    every_25th = np.arange(0, len(table), 25)  # a photo in two tiles of three
    assert _agrees_with_float16(table, queries, every_25th, "int4")[0] == 20_025


def test_an_int4_pass_keeps_no_page_of_a_large_float16_file(settings, monkeypatch):
    """A web worker searching through the int4 twin maps it, and reads only the rows it scores again
    from the float16 file: none of that file's pages count in the worker's memory, nor any of the
    int8 twin's (a filter with a photo in most tiles is scored by the pass)."""
    from gallery.vector_file import VectorTable, current, int4_kernel

    if int4_kernel() is None:
        pytest.skip(NO_KERNEL)
    monkeypatch.setattr(vector_file, "READ_FROM", 0)  # this file stands for a large library's
    rng = np.random.default_rng(4)
    ids = np.arange(1, 30_001, dtype=np.int64)
    vectors = unit(rng, len(ids))
    vector_file.write("pages-test", ids, lambda at: vectors[at].astype(vector_file.DTYPE))
    file = current("pages-test")  # mapped afresh, as a worker would
    table = VectorTable(ids, file, np.arange(len(ids)), np.zeros((0, DIMENSION), dtype=vector_file.DTYPE))
    every_25th = np.arange(0, len(ids), 25)  # a photo in most int4 tiles
    for query in unit(rng, 20):
        found, scores = table.best(query, 10, rough_pass="int4")
        assert np.allclose(scores, vectors[found] @ query, atol=1e-3)
        found, scores = table.best(query, 10, every_25th, rough_pass="int4")
        assert np.allclose(scores, vectors[found] @ query, atol=1e-3) and set(found) <= set(every_25th)

    def resident_kb(suffix: str) -> int:
        total, inside = 0, False
        for line in open("/proc/self/smaps"):
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                inside = fields[-1] == str(file.stem) + suffix
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
        return total

    assert resident_kb(".int4-tiles.npy") >= len(ids) * DIMENSION // 2 // 1024  # the twin, all read
    assert resident_kb(".vectors.npy") == 0
    assert resident_kb(".int8.npy") == 0


@pytest.mark.parametrize("large", [False, True])
def test_rows_to_score_again_come_from_a_small_files_mapping_and_a_large_files_reads(large, settings, monkeypatch):
    """A read per row keeps a large file's pages out of a worker's memory; a small file's pages cost
    little, and gathering its rows through the mapping is several times faster."""
    from gallery.vector_file import VectorTable, current

    rng = np.random.default_rng(5)
    ids = np.arange(1, 2_001, dtype=np.int64)
    vectors = unit(rng, len(ids))
    vector_file.write("gather-test", ids, lambda at: vectors[at].astype(vector_file.DTYPE))
    file = current("gather-test")
    monkeypatch.setattr(vector_file, "READ_FROM", file.vectors.nbytes + (0 if large else 1))
    reads = []
    real_read = VectorTable._read
    monkeypatch.setattr(VectorTable, "_read", lambda self, rows: reads.append(len(rows)) or real_read(self, rows))
    table = VectorTable(ids, file, np.arange(len(ids)), np.zeros((0, DIMENSION), dtype=vector_file.DTYPE))
    positions = np.sort(rng.choice(len(ids), 300, replace=False))
    assert np.array_equal(table.take(positions), vectors[positions].astype(vector_file.DTYPE))
    assert reads == ([300] if large else [])


def test_the_search_pass_is_measured_once_and_remembered(settings, monkeypatch):
    from search import paths

    settings.IMGSIM_SEARCH_PASS = "auto"
    timed = []
    real_time = paths._time
    monkeypatch.setattr(paths, "_time", lambda run: timed.append(run) or real_time(run))
    chosen = paths.search_pass()
    assert chosen in ("fp16", "int8", "int4") and len(timed) == 27  # nine runs of each pass
    assert paths.search_pass() == chosen and len(timed) == 27  # remembered: no second measurement
    record = next(value for key, value in paths._read().items() if key.endswith(paths.PASS_KEY))
    assert record["pass"] == chosen and set(record["ms"]) == {"fp16", "int8", "int4"}
    assert record["ms"][chosen] == min(record["ms"].values()) or chosen == "fp16"
    settings.IMGSIM_SEARCH_PASS = "int8"
    assert paths.search_pass() == "int8"  # forced


def test_without_the_compiled_kernel_an_int4_search_reads_the_int8_twin(settings, monkeypatch):
    """An install with no C compiler has no gallery/int4.c: IMGSIM_SEARCH_PASS=int4 then finds the
    same photos through the int8 twin, and no int4 twin is written."""
    from gallery.vector_file import VectorTable

    monkeypatch.setattr(vector_file, "int4_kernel", lambda: None)
    rng = np.random.default_rng(14)
    table, newer = _narrow_table("no-kernel-test", rng)
    monkeypatch.setattr(VectorTable, "_int4_tiles", _refuse("the int4 twin's tiles"))
    int8_rows, read_int8_rows = [], VectorTable._int8_rows
    monkeypatch.setattr(VectorTable, "_int8_rows", lambda *args: int8_rows.append(1) or read_int8_rows(*args))
    for positions in (np.arange(len(table)), np.arange(0, len(table), 40)):  # every photo (the pass), a few
        assert _agrees_with_float16(table, [*unit(rng, 4), newer[7]], positions, "int4") is not None
    assert int8_rows and not list(settings.IMGSIM_VECTOR_DIR.glob("*int4*"))


def test_the_int4_twin_of_torchs_layout_goes_when_the_tiles_are_written(settings):
    """A data dir from before gallery/int4.c holds torch's int4 twin (288 MB at a million): the tiles
    written for the same file replace it."""
    if vector_file.int4_kernel() is None:
        pytest.skip(NO_KERNEL)
    ids = np.arange(1, 101, dtype=np.int64)
    vectors = unit(np.random.default_rng(15), len(ids))
    file = vector_file.write("old-twin-test", ids, lambda at: vectors[at].astype(vector_file.DTYPE))
    file.stem.with_suffix(".int4-tiles.npy").unlink()
    before = [file.stem.with_suffix(".int4-3d973790.npy"), file.stem.with_suffix(".int4-3d973790-scales.npy")]
    for path in before:
        np.save(path, np.zeros(4, dtype=np.uint8))
    assert vector_file.int4_twin(file).shape == (7, 4 * 64 + 64)  # 100 rows in 7 tiles; one group of 32 a row
    assert not any(path.exists() for path in before) and file.stem.with_suffix(".int4-tiles.npy").exists()
