"""The duplicate scan: compare every photo with every other one and record tiered pairs.

How a pair's tier is decided is documented in search/duplicates/__init__.py. A
scan never compares all pairs in Python: it multiplies blocks of the vector
matrix (bfloat16 where it measured faster here, candidates re-scored in float32), upper
triangle only; an incremental scan compares only photos added since the last one. A scan
that would compare more than IMGSIM_DUPLICATE_EXACT_PAIRS pairs compares each photo only
within its nearest k-means clusters (search.similarity.clustered_blocks).
"""

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from gallery.background import start as run_on_a_thread
from gallery.models import Image
from gallery.vector_file import quantised
from search.columns import searchable_vectors
from search.models import DuplicatePair, DuplicateScan, Tier
from search.paths import block_dtype
from search.similarity import clustered_blocks, similar_blocks, similar_to_all
from search.sync import current_generation

log = logging.getLogger(__name__)

CROP_HAMMING = 26
TIER_ORDER = {Tier.EXACT: 0, Tier.NEAR: 1, Tier.SIMILAR: 2}


@dataclass(frozen=True)
class Pair:
    a: int
    b: int
    tier: str
    similarity: float
    hamming: int | None
    rule: str = ""


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


class ScanStopped(Exception):
    """The worker is stopping; checkpoint holds what the scan has found and where to go on."""

    def __init__(self, checkpoint: dict):
        super().__init__("duplicate scan stopped at a checkpoint")
        self.checkpoint = checkpoint


def find_pairs(
    *,
    similarity_threshold: float | None = None,
    hamming_threshold: int | None = None,
    since_id: int = 0,
    on_progress: Callable[[float], None] | None = None,
    checkpoint: dict | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[Pair]:
    """Compare live, embedded photos (only those with id > since_id against all); return tiered pairs.

    When should_stop() turns true between blocks, raises ScanStopped with a
    checkpoint (the candidates found so far and the id to go on from); passing it
    back as checkpoint continues the scan where it stopped.
    """
    similarity_threshold = settings.IMGSIM_DUPLICATE_THRESHOLD if similarity_threshold is None else similarity_threshold
    hamming_threshold = settings.IMGSIM_DUPLICATE_HAMMING if hamming_threshold is None else hamming_threshold
    ids, table = searchable_vectors(current_generation())
    rows = np.flatnonzero(ids > since_id)
    found = [tuple(candidate) for candidate in (checkpoint or {}).get("candidates", [])]
    if len(ids) and len(rows):
        floor = min(
            similarity_threshold, settings.IMGSIM_DUPLICATE_NEAR_CONFIRM, settings.IMGSIM_DUPLICATE_CROP_CONFIRM
        )
        for done, going_on, i, j, similarity in _blocks(ids, table, rows, floor, since_id, checkpoint or {}):
            found.extend(zip(ids[i].tolist(), ids[j].tolist(), similarity.tolist()))
            if on_progress:
                on_progress(done)
            if done < 1 and should_stop():
                raise ScanStopped({**going_on, "candidates": found})
    facts = _facts(found, since_id)
    pairs: dict[tuple[int, int], Pair] = {}
    for a, b, sim in found:
        a, b = (a, b) if a < b else (b, a)
        if a not in facts or b not in facts:
            continue  # trashed while a stopped scan waited
        (phash_a, pixels_a), (phash_b, pixels_b) = facts[a], facts[b]
        bits = (int(phash_a, 16) ^ int(phash_b, 16)).bit_count() if phash_a and phash_b else None
        found_tier = classify_with_rule(
            float(sim),
            bits,
            pixels_a != "" and pixels_a == pixels_b,
            similarity_threshold=similarity_threshold,
            hamming_threshold=hamming_threshold,
        )
        if found_tier:
            pairs[(a, b)] = Pair(a, b, found_tier[0], float(sim), bits, found_tier[1])
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


def _facts(found: list, since_id: int) -> dict[int, tuple[str, str]]:
    """Perceptual and pixel hashes of the live photos a scan needs: all of them for a full scan; for
    photos since an id, the new ones, those in the pairs found and those sharing a new pixel hash."""
    if not since_id:
        rows = Image.objects.live().order_by().values_list("pk", "phash", "pixel_hash").iterator(chunk_size=10_000)
        return {pk: (ph, px) for pk, ph, px in rows}
    facts = _live_facts(Q(pk__gt=since_id))
    hashes = sorted({px for _, px in facts.values() if px})
    for start in range(0, len(hashes), 5000):  # lists within any database's limit on parameters
        facts.update(_live_facts(Q(pixel_hash__in=hashes[start : start + 5000])))  # sharing a new one's pixels
    older = sorted({pk for a, b, _ in found for pk in (a, b)} - facts.keys())
    for start in range(0, len(older), 5000):
        facts.update(_live_facts(Q(pk__in=older[start : start + 5000])))
    return facts


def _live_facts(where: Q) -> dict[int, tuple[str, str]]:
    """The hashes of the live photos among these, found by id or hash and the trashed ones left out
    here: asking SQL for live photos, or in the default order, walked an index of every photo."""
    rows = Image.objects.filter(where).order_by().values_list("pk", "phash", "pixel_hash", "trashed_at")
    return {pk: (ph, px) for pk, ph, px, trashed_at in rows if trashed_at is None}


def _blocks(ids, table, rows, floor: float, since_id: int, checkpoint: dict):
    """Yield (fraction done, checkpoint to go on from, i, j, similarity) of the exact scan, or of the
    clustered one when the exact scan would compare more than IMGSIM_DUPLICATE_EXACT_PAIRS pairs."""
    compared = len(rows) * len(ids) // (2 if since_id == 0 else 1)
    # Positions shift when photos come or go between a stop and the resumption; ids do not.
    first = int(np.searchsorted(ids[rows], checkpoint.get("next_id", 0)))
    if since_id and "next_cluster" not in checkpoint and compared <= settings.IMGSIM_DUPLICATE_EXACT_PAIRS:
        kind = block_dtype() if table.file is not None else "fp32"  # measured fastest here (search.paths)
        quantised_file, scale = quantised(table.file) if kind == "int8" else (None, 1.0)
        for done, i, j, similarity in similar_to_all(
            table.take(rows).astype(np.float32),
            rows,
            len(ids),
            floor,
            kind=kind,
            columns_at=(lambda at: table.take_int8(at, quantised_file, scale)) if kind == "int8" else table.take,
            exact_at=lambda at: table.take(at).astype(np.float32),
            scale=scale,
            first=first,
        ):
            yield done / len(rows), ({"next_id": int(ids[rows[done]])} if done < len(rows) else {}), i, j, similarity
        return
    vectors = table.matrix()
    int8 = None
    if block_dtype() == "int8" and table.file is not None:  # the file's twin, not a quantisation per scan
        quantised_file, scale = quantised(table.file)
        int8 = (table.take_int8(np.arange(len(ids)), quantised_file, scale), scale)
    if "next_cluster" in checkpoint or compared > settings.IMGSIM_DUPLICATE_EXACT_PAIRS:
        # k-means is seeded, so the same vectors give the same clusters and a resumed scan goes on
        # at the next one; when photos came or went meanwhile, it starts over (keeping what it found).
        digest = hashlib.sha256(ids.tobytes() + vectors[:: max(1, len(vectors) // 512)].tobytes()).hexdigest()[:16]
        first = checkpoint.get("next_cluster", 0) if checkpoint.get("vectors") == digest else 0
        probes = settings.IMGSIM_DUPLICATE_PROBES
        for done, clusters, i, j, similarity in clustered_blocks(
            vectors, rows, floor, probes=probes, first=first, quantised=int8
        ):
            yield done / clusters, {"next_cluster": done, "vectors": digest}, i, j, similarity
        return
    for done, i, j, similarity in similar_blocks(
        vectors, rows, floor, triangle=since_id == 0, first=first, quantised=int8
    ):
        going_on = {"next_id": int(ids[rows[done]])} if done < len(rows) else {}
        yield done / len(rows), going_on, i, j, similarity


def run_scan(scan: DuplicateScan) -> DuplicateScan:
    """Run a recorded scan to completion, saving pairs and progress.

    A worker asked to stop leaves the scan running with a checkpoint; run_scan on
    the same row (the next worker start does it) goes on from there.
    """
    from search.stopping import stop_requested

    started = time.perf_counter()
    checkpoint = scan.checkpoint or {}
    # Photos up to this id are compared with everything when the scan ends; kept across a stop.
    last_id = checkpoint.get("last_id") or Image.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
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
            checkpoint=checkpoint,
            should_stop=stop_requested,
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
    except ScanStopped as stopped:
        spent = checkpoint.get("seconds", 0.0) + time.perf_counter() - started
        DuplicateScan.objects.filter(pk=scan.pk).update(
            checkpoint={**stopped.checkpoint, "last_id": last_id, "seconds": spent}
        )
        log.info("duplicate scan %s stopped at a checkpoint; the next worker goes on from it", scan.pk)
        scan.refresh_from_db()
        return scan
    except Exception as error:  # the page shows the failure; the previous pairs stay
        log.exception("duplicate scan failed")
        scan.status, scan.error = DuplicateScan.Status.FAILED, f"{type(error).__name__}: {error}"
    scan.progress, scan.finished_at = 1.0, timezone.now()
    scan.seconds, scan.checkpoint = checkpoint.get("seconds", 0.0) + time.perf_counter() - started, None
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
