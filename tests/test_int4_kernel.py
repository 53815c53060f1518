"""Search's int4 pass (gallery/int4.c): the tiles' layout, each kernel's scores against numpy's, bad calls."""

import shutil
import sysconfig

import numpy as np
import pytest
import torch

from gallery import vector_file

_int4 = pytest.importorskip("gallery._int4", reason="gallery/int4.c was not compiled (no C compiler at install)")


def test_the_kernel_is_compiled_wherever_there_is_a_c_compiler():
    """setup.py builds it as optional: an install where a compiler was at hand must not have lost it."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    assert shutil.which(compiler) is None or vector_file.int4_kernel() in _int4.kernels()


def _unpacked(tiles: np.ndarray, dimension: int) -> tuple[np.ndarray, ...]:
    """The levels (rows x dimension), scales and leasts (rows x groups) held by tiles, read back by numpy."""
    group = vector_file.int4_group(dimension)
    groups, chunks = dimension // group, group // 8
    parts = tiles.reshape(len(tiles), groups, chunks * 64 + 64)
    packed = parts[..., : chunks * 64].reshape(len(tiles), groups, chunks, 16, 4)  # tile, group, chunk, row, byte
    low, high = packed & 0x0F, packed >> 4
    levels = np.stack([low, high], -2)  # tile, group, chunk, row, nibble, byte: component 8c + 4 nibble + byte
    levels = levels.transpose(0, 3, 1, 2, 4, 5).reshape(len(tiles) * 16, dimension)
    floats = parts[..., chunks * 64 :].copy().view(np.float16).reshape(len(tiles), groups, 2, 16)
    scales, leasts = floats.transpose(2, 0, 3, 1).reshape(2, len(tiles) * 16, groups).astype(np.float32)
    return levels, scales, leasts


@pytest.mark.parametrize("dimension", [512, 96])  # groups of 64, and of 32 where 64 does not divide it
def test_each_kernel_scores_the_tiles_as_numpy_does(dimension):
    rng = np.random.default_rng(dimension)
    rows = rng.standard_normal((160, dimension)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    tiles = vector_file.int4_quantise(torch.from_numpy(rows))
    levels, scales, leasts = _unpacked(tiles, dimension)
    group = vector_file.int4_group(dimension)
    components = levels.reshape(160, -1, group) * scales[..., None] + leasts[..., None]
    # 16 levels from each group's least to its most: every component within half a level of its row's
    assert np.abs(components.reshape(160, dimension) - rows).max() <= 0.5 * scales.max() + 1e-3

    vector = rows[3] * 0.6 + rows[77] * 0.4
    vector /= np.linalg.norm(vector)
    query, sums, times = vector_file.int4_query(vector)
    expected = components.reshape(160, dimension) @ query.astype(np.float64) / times
    kernels = _int4.kernels()
    assert kernels, "this CPU runs neither kernel (AVX-512 VNNI nor AVX2)"
    for kernel in kernels:
        scores = vector_file.int4_scores(tiles, vector, kernel=kernel)
        assert np.allclose(scores, expected, rtol=1e-4, atol=1e-5), kernel
        assert np.abs(scores - rows @ vector).max() < 0.05  # rough scores: the true ones to a few hundredths
        listed = np.array([7, 0, 3], dtype=np.int64)
        assert vector_file.int4_scores(tiles, vector, listed, kernel=kernel).tolist() == (
            scores.reshape(10, 16)[listed].ravel().tolist()
        )
    assert set(np.argsort(-scores)[:2]) == {3, 77}


def test_calls_that_do_not_fit_the_tiles_are_refused_not_read_past():
    tiles = vector_file.int4_quantise(torch.randn(32, 512))  # two tiles
    query, sums, _ = vector_file.int4_query(np.ones(512, dtype=np.float32))
    kernel, out = _int4.kernels()[0], np.empty(64, dtype=np.float32)
    calls = {
        "no such kernel on this CPU": ("sse9", tiles, 8, 8, query, sums, out, 0, 2),
        "the query does not match": (kernel, tiles, 8, 8, query[:256], sums, out, 0, 2),
        "fewer than 16": (kernel, tiles, 8, 8, query, sums, out[:20], 0, 2),
        "tiles outside the buffer": (kernel, tiles, 8, 8, query, sums, out, 1, 2),
        "a listed tile outside": (kernel, tiles, 8, 8, query, sums, out, 0, 2, np.array([1, 2], dtype=np.int64)),
    }
    for message, arguments in calls.items():
        with pytest.raises(ValueError, match=message):
            _int4.score(*arguments)
    _int4.score(kernel, tiles, 8, 8, query, sums, out, 0, 2)  # the same call, fitting
    assert np.isfinite(out[:32]).all()


def _score_in_child(tiles, vector, expected, done):
    done.put(bool(np.array_equal(vector_file.int4_scores(tiles, vector), expected)))


def test_a_forked_process_scores_with_threads_of_its_own():
    """The pool of scoring threads does not survive a fork: a child using its parent's would wait forever."""
    import multiprocessing

    tiles = vector_file.int4_quantise(torch.randn(64 * 16, 512))
    vector = np.full(512, 512**-0.5, dtype=np.float32)
    expected = vector_file.int4_scores(tiles, vector)  # the parent's pool exists from here
    fork = multiprocessing.get_context("fork")
    done = fork.Queue()
    child = fork.Process(target=_score_in_child, args=(tiles, vector, expected, done))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0 and done.get(timeout=1) is True
