"""Fuzzing decode + EXIF + renditions: mutated real files and raw bytes never raise anything unexpected.

Bounded here (a few seconds per run); `python -m bench.fuzz` runs atheris for longer.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_targets import SEED_FORMATS, decode_one, seed_images

SEEDS = seed_images()
FUZZ = settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    fmt=st.sampled_from(SEED_FORMATS),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=12),
    cut=st.one_of(st.none(), st.integers(0, 1 << 20)),
)
def test_mutated_files_decode_or_are_refused_clearly(fmt, flips, cut):
    data = bytearray(SEEDS[fmt])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    decode_one(bytes(data))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_are_refused_clearly(data):
    decode_one(data)


@pytest.mark.parametrize("fmt", SEED_FORMATS)
def test_the_seeds_themselves_decode(fmt):
    from gallery.decoding import decode

    assert decode(SEEDS[fmt]).format == fmt  # the fuzzer starts from real files, not from rejects
