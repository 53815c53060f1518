"""Duplicate detection and review: exact copies, near-duplicates and similar shots in one queue.

Tiers of a pair, strongest first (scan.py decides them):
- exact: the same decoded pixels in different files (an EXIF edit, a re-saved PNG);
  found by the pixel hash, with or without embeddings.
- near-duplicate: the same picture resized, re-encoded, brightened or slightly
  cropped. Measured on generated families: resize, JPEG quality 30-90 and
  brightness/contrast changes move the 64-bit pHash by at most 8 bits, unrelated
  photos by at least 16; so pHash distance <= IMGSIM_DUPLICATE_HAMMING (10)
  confirmed by CLIP >= IMGSIM_DUPLICATE_NEAR_CONFIRM (0.90). A 5% crop moves pHash
  by up to 22-32 bits, into the range of unrelated photos, so a crop (distance <=
  26) counts only with CLIP >= IMGSIM_DUPLICATE_CROP_CONFIRM (0.97) as well.
- similar shot: CLIP similarity >= the threshold (0.95, the brief's default) but
  neither of the above: bursts, the same scene a moment later.

Groups for review are stars, never chains (groups.py): a keeper and the photos
each directly a duplicate of it, labelled by the weakest member. Decisions and
their undo are in review.py.
"""

from search.duplicates.groups import Group, Member, choose_keeper, duplicate_groups, star_groups, tier_counts
from search.duplicates.scan import (
    Pair,
    classify,
    find_duplicates,
    find_pairs,
    run_scan,
    start_scan,
)
from search.similarity import similar_pairs

__all__ = [
    "Group",
    "Member",
    "Pair",
    "choose_keeper",
    "classify",
    "duplicate_groups",
    "find_duplicates",
    "find_pairs",
    "run_scan",
    "similar_pairs",
    "star_groups",
    "start_scan",
    "tier_counts",
]
