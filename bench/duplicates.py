"""Duplicate-scan benchmark: full scan, incremental scan, and the per-image-query reference.

    .venv/bin/python -m bench.duplicates [--photos 100000] [--new 100] [--reference 2000]

Synthetic 512-d vectors (clustered) with pHashes. The reference approach asks
Chroma for each photo's neighbours (one query per photo); it is timed on
--reference photos and extrapolated to the whole library, in the same run.
"""

import argparse
import time

from bench.common import setup_django, synthetic_library, table

MODEL = "bench/random-512"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--reference", type=int, default=2000)
    args = parser.parse_args()
    setup_django("duplicates", IMGSIM_MODEL=MODEL)
    import numpy as np

    from gallery.models import Image
    from search.duplicates import find_pairs
    from search.index import get_index
    from search.reconcile import reindex

    total = args.photos + args.new
    vectors = synthetic_library(total, model=MODEL)
    rng = np.random.default_rng(3)
    Image.objects.update(phash="")  # set below in bulk, as ingest would have
    hashes = [f"{int(h):016x}" for h in rng.integers(0, 2**63, total, dtype=np.int64)]
    pks = list(Image.objects.order_by("pk").values_list("pk", flat=True))
    # Plant near-copies: 1% of photos get a slightly perturbed vector of another one
    # and that one's pHash, so the scan has real pairs to extract and tier.
    from gallery.models import ImageVector

    copies = rng.choice(total, size=total // 100, replace=False)
    for row in copies:
        source = (row + 7) % total
        noisy = vectors[source] + 0.01 * rng.normal(size=vectors.shape[1]).astype(np.float32)
        vectors[row] = noisy / np.linalg.norm(noisy)
        hashes[row] = hashes[source]
    ImageVector.objects.bulk_update(
        [ImageVector(image_id=pks[row], data=vectors[row].tobytes()) for row in copies], ["data"], batch_size=2000
    )
    for start in range(0, total, 5000):
        Image.objects.bulk_update(
            [Image(pk=pk, phash=h) for pk, h in zip(pks[start : start + 5000], hashes[start : start + 5000])], ["phash"]
        )
    reindex()
    cutoff = pks[args.photos - 1]

    started = time.perf_counter()
    pairs = find_pairs(similarity_threshold=0.95)
    full = time.perf_counter() - started
    started = time.perf_counter()
    new_pairs = find_pairs(similarity_threshold=0.95, since_id=cutoff)
    incremental = time.perf_counter() - started

    index = get_index()
    sample = rng.choice(total, size=min(args.reference, total), replace=False)
    started = time.perf_counter()
    for row in sample:
        index.query(MODEL, vectors[row], 10)
    per_query = (time.perf_counter() - started) / len(sample)

    print(f"{total:,} photos, this machine (seconds)")
    print(
        table(
            ["approach", "photos compared", "seconds", "pairs"],
            [
                ["blocked matrix product (ours), full scan", f"{total:,} x all", full, len(pairs)],
                [f"incremental: {args.new} new x all", f"{args.new} x all", incremental, len(new_pairs)],
                [
                    "one Chroma query per photo (reference)",
                    f"{total:,} (extrapolated from {len(sample)})",
                    per_query * total,
                    "-",
                ],
            ],
        )
    )
    print(f"full scan is {per_query * total / full:.1f}x faster than one query per photo")


if __name__ == "__main__":
    main()
