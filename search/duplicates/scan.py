"""The duplicate scan: compare every photo with every other one and record tiered pairs.

How a pair's tier is decided is documented in search/duplicates/__init__.py. A
scan never compares all pairs in Python: it multiplies blocks of the vector
matrix (bfloat16 where the CPU has it, candidates re-scored in float32), upper
triangle only; an incremental scan compares only photos added since the last one.
"""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gallery.background import start as run_on_a_thread
from gallery.models import Image
from search.columns import column_cache
from search.models import DuplicatePair, DuplicateScan, Tier
from search.sync import current_generation

log = logging.getLogger(__name__)

CROP_HAMMING = 26
BLOCK = 1024
TIER_ORDER = {Tier.EXACT: 0, Tier.NEAR: 1, Tier.SIMILAR: 2}


@dataclass(frozen=True)
class Pair:
    a: int
    b: int
    tier: str
    similarity: float
    hamming: int | None
    rule: str = ""


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.bitwise_count(values).astype(np.int16)


def classify(
    similarity: float, hamming: int | None, same_pixels: bool, *, similarity_threshold: float, hamming_threshold: int
) -> str | None:
    """Return the tier of a pair, or None when it is not a duplicate of any kind."""
    found = classify_with_rule(
        similarity, hamming, same_pixels, similarity_threshold=similarity_threshold, hamming_threshold=hamming_threshold
    )
    return found[0] if found else None


def classify_with_rule(
    similarity: float, hamming: int | None, same_pixels: bool, *, similarity_threshold: float, hamming_threshold: int
) -> tuple[str, str] | None:
    """Return (tier, the rule that matched, in words), or None when the pair is not a duplicate."""
    if same_pixels:
        return Tier.EXACT, "same decoded pixels"
    near_confirm, crop_confirm = settings.IMGSIM_DUPLICATE_NEAR_CONFIRM, settings.IMGSIM_DUPLICATE_CROP_CONFIRM
    if hamming is not None and hamming <= hamming_threshold and similarity >= near_confirm:
        return Tier.NEAR, f"perceptual hash within {hamming_threshold} bits, CLIP similarity >= {near_confirm:g}"
    if hamming is not None and hamming <= CROP_HAMMING and similarity >= crop_confirm:
        return Tier.NEAR, f"crop: perceptual hash within {CROP_HAMMING} bits, CLIP similarity >= {crop_confirm:g}"
    if similarity >= similarity_threshold:
        return Tier.SIMILAR, f"CLIP similarity >= {similarity_threshold:g}"
    return None


def pair_reason(tier: str, similarity: float, hamming: int | None) -> str:
    """Say in words why a stored pair is a duplicate, for the review page."""
    if tier == Tier.EXACT:
        return "the same pixels"
    if tier == Tier.NEAR:
        bits = f"perceptual hash {hamming} bits apart, " if hamming is not None else ""
        return f"{bits}CLIP similarity {similarity:.3f}"
    return f"CLIP similarity {similarity:.3f}"


def similar_pairs(
    vectors: np.ndarray, rows: np.ndarray, floor: float, on_progress: Callable[[float], None] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (i, j, similarity) with i in rows, i != j, each pair once, similarity >= floor."""
    import torch

    from search.embeddings import cpu_supports_bf16

    dtype = torch.bfloat16 if cpu_supports_bf16() else torch.float32
    matrix = torch.from_numpy(np.ascontiguousarray(vectors)).to(dtype)
    margin = 0.01 if dtype == torch.bfloat16 else 0.0  # bf16 rounds; candidates are re-scored in fp32
    full = len(rows) == len(vectors)
    in_rows = np.zeros(len(vectors), dtype=bool)
    in_rows[rows] = True
    found_i, found_j = [], []
    with torch.inference_mode():
        for start in range(0, len(rows), BLOCK):
            block_rows = rows[start : start + BLOCK]
            # A full scan needs only the upper triangle: columns from this block on.
            first_column = int(block_rows[0]) if full else 0
            scores = matrix[block_rows] @ matrix[first_column:].T
            if full:  # within the block itself, keep only j > i (no self-pairs, no repeats)
                width = len(block_rows)
                scores[:, :width] = torch.triu(scores[:, :width], diagonal=1)
            hits = scores >= floor - margin
            # Almost every row has no hit: find the few that do before extracting positions.
            busy = torch.nonzero(hits.any(dim=1)).flatten()
            if len(busy):
                sub_r, sub_c = torch.nonzero(hits[busy], as_tuple=True)
                block_i = block_rows[busy[sub_r].numpy()]
                block_j = sub_c.numpy() + first_column
                if not full:  # pairs among scanned rows: keep each once, drop self-pairs
                    keep = (block_j != block_i) & (~in_rows[block_j] | (block_j > block_i))
                    block_i, block_j = block_i[keep], block_j[keep]
                found_i.append(block_i)
                found_j.append(block_j)
            if on_progress:
                on_progress(min(1.0, (start + BLOCK) / max(len(rows), 1)))
    i = np.concatenate(found_i) if found_i else np.zeros(0, dtype=np.int64)
    j = np.concatenate(found_j) if found_j else np.zeros(0, dtype=np.int64)
    exact = np.einsum("ij,ij->i", vectors[i], vectors[j]) if len(i) else np.zeros(0, dtype=np.float32)
    keep = exact >= floor
    return i[keep], j[keep], exact[keep]


def find_pairs(
    *,
    similarity_threshold: float | None = None,
    hamming_threshold: int | None = None,
    since_id: int = 0,
    on_progress: Callable[[float], None] | None = None,
) -> list[Pair]:
    """Compare live, embedded photos (only those with id > since_id against all); return tiered pairs."""
    similarity_threshold = settings.IMGSIM_DUPLICATE_THRESHOLD if similarity_threshold is None else similarity_threshold
    hamming_threshold = settings.IMGSIM_DUPLICATE_HAMMING if hamming_threshold is None else hamming_threshold
    columns = column_cache.columns(current_generation(), exact=True)
    ids, vectors = columns.ids, columns.vectors
    facts = dict(((pk, (ph, px)) for pk, ph, px in Image.objects.live().values_list("pk", "phash", "pixel_hash")))
    phash = np.array([int(facts.get(int(pk), ("", ""))[0] or "0", 16) for pk in ids], dtype=np.uint64)
    has_phash = np.array([bool(facts.get(int(pk), ("", ""))[0]) for pk in ids], dtype=bool)
    rows = np.flatnonzero(ids > since_id)
    pairs: dict[tuple[int, int], Pair] = {}
    if len(ids) and len(rows):
        floor = min(
            similarity_threshold, settings.IMGSIM_DUPLICATE_NEAR_CONFIRM, settings.IMGSIM_DUPLICATE_CROP_CONFIRM
        )
        i, j, similarity = similar_pairs(vectors, rows, floor, on_progress)
        hamming = _popcount(phash[i] ^ phash[j])
        for a, b, sim, bits, known in zip(ids[i], ids[j], similarity, hamming, has_phash[i] & has_phash[j]):
            a, b = (int(a), int(b)) if a < b else (int(b), int(a))
            same = facts[a][1] != "" and facts[a][1] == facts[b][1]
            found = classify_with_rule(
                float(sim),
                int(bits) if known else None,
                same,
                similarity_threshold=similarity_threshold,
                hamming_threshold=hamming_threshold,
            )
            if found:
                pairs[(a, b)] = Pair(a, b, found[0], float(sim), int(bits) if known else None, found[1])
    # Exact copies by pixel hash, also among photos that have no embedding yet.
    by_pixels: dict[str, list[int]] = {}
    for pk, (_, pixel_hash) in facts.items():
        if pixel_hash:
            by_pixels.setdefault(pixel_hash, []).append(pk)
    for members in by_pixels.values():
        members.sort()
        for x, a in enumerate(members):
            for b in members[x + 1 :]:
                if b > since_id or a > since_id:
                    pairs[(a, b)] = Pair(a, b, Tier.EXACT, 1.0, 0, "same decoded pixels")
    return sorted(pairs.values(), key=lambda p: (TIER_ORDER[p.tier], -p.similarity))


def run_scan(scan: DuplicateScan) -> DuplicateScan:
    """Run a recorded scan to completion, saving pairs and progress."""
    started = time.perf_counter()
    last_id = Image.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    since = 0
    if scan.incremental:
        previous = DuplicateScan.objects.filter(status=DuplicateScan.Status.DONE).exclude(pk=scan.pk).first()
        since = previous.last_image_id if previous else 0

    def progress(value: float) -> None:
        DuplicateScan.objects.filter(pk=scan.pk).update(progress=round(value * 0.95, 3))

    try:
        pairs = find_pairs(
            similarity_threshold=scan.similarity_threshold,
            hamming_threshold=scan.hamming_threshold,
            since_id=since,
            on_progress=progress,
        )
        with transaction.atomic():
            if not scan.incremental:
                DuplicatePair.objects.all().delete()
            DuplicatePair.objects.bulk_create(
                [
                    DuplicatePair(
                        image_a_id=p.a, image_b_id=p.b, tier=p.tier, similarity=p.similarity, hamming=p.hamming
                    )
                    for p in pairs
                ],
                update_conflicts=True,
                unique_fields=["image_a", "image_b"],
                update_fields=["tier", "similarity", "hamming"],
                batch_size=2000,
            )
        scan.status, scan.pairs, scan.last_image_id = DuplicateScan.Status.DONE, len(pairs), last_id
    except Exception as error:  # the page shows the failure; the previous pairs stay
        log.exception("duplicate scan failed")
        scan.status, scan.error = DuplicateScan.Status.FAILED, f"{type(error).__name__}: {error}"
    scan.progress, scan.finished_at, scan.seconds = 1.0, timezone.now(), time.perf_counter() - started
    scan.save()
    return scan


def start_scan(
    *,
    incremental: bool = False,
    similarity_threshold: float | None = None,
    hamming_threshold: int | None = None,
    background: bool = False,
) -> DuplicateScan:
    """Record a scan and run it, in this thread or a background one; return the scan row."""
    running = DuplicateScan.objects.filter(status=DuplicateScan.Status.RUNNING).first()
    if running is not None and (timezone.now() - running.started_at).total_seconds() < 3600:
        return running  # one scan at a time
    scan = DuplicateScan.objects.create(
        incremental=incremental,
        similarity_threshold=settings.IMGSIM_DUPLICATE_THRESHOLD
        if similarity_threshold is None
        else similarity_threshold,
        hamming_threshold=settings.IMGSIM_DUPLICATE_HAMMING if hamming_threshold is None else hamming_threshold,
    )
    if not background:
        return run_scan(scan)
    if settings.IMGSIM_WORKER:
        from search.tasks import duplicate_scan

        duplicate_scan.enqueue(scan_id=scan.pk)
        return scan

    run_on_a_thread("duplicate-scan", lambda: run_scan(scan))
    return scan


def find_duplicates(
    similarity_threshold: float = 0.95, *, hamming_threshold: int | None = None, tiers: Iterable[str] | None = None
) -> list[dict]:
    """The brief's find_duplicates: tiered pairs, strongest tier and most alike first, with file names.

    similarity_threshold is the CLIP similarity of the "similar shot" tier only.
    Exact copies (same pixels) and near-duplicates (perceptual hash confirmed by
    CLIP, IMGSIM_DUPLICATE_NEAR_CONFIRM / _CROP_CONFIRM) have rules of their own,
    so a near pair may be less similar than the threshold: each pair says which
    rule matched (`tier`, `rule`, `similarity`, `hamming`). tiers selects tiers,
    e.g. tiers=["exact"].
    """
    wanted = set(Tier.values if tiers is None else tiers)
    unknown = wanted - set(Tier.values)
    if unknown:
        raise ValueError(f"unknown tier(s) {', '.join(sorted(unknown))}; tiers are {', '.join(Tier.values)}")
    pairs = [
        p
        for p in find_pairs(similarity_threshold=similarity_threshold, hamming_threshold=hamming_threshold)
        if p.tier in wanted
    ]
    names = dict(
        Image.objects.filter(pk__in={p.a for p in pairs} | {p.b for p in pairs}).values_list("pk", "original_name")
    )
    return [
        {
            "image1_id": p.a,
            "image2_id": p.b,
            "image1_filename": names.get(p.a, ""),
            "image2_filename": names.get(p.b, ""),
            "similarity": p.similarity,
            "tier": p.tier,
            "hamming": p.hamming,
            "rule": p.rule,
        }
        for p in pairs
    ]
