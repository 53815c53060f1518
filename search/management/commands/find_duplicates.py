import json

from django.conf import settings
from django.core.management.base import BaseCommand

from search.duplicates import start_scan
from search.models import DuplicatePair, Tier


class Command(BaseCommand):
    help = (
        "Scan the library for exact copies, near-duplicates (resized, re-encoded, slightly cropped or "
        "brightened) and similar shots, save the pairs for the review page (/duplicates/) and print them. "
        "--incremental compares only photos added since the last scan with everything."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--threshold",
            type=float,
            default=None,
            help=f"CLIP similarity for similar shots (default {settings.IMGSIM_DUPLICATE_THRESHOLD})",
        )
        parser.add_argument(
            "--hamming",
            type=int,
            default=None,
            help=f"pHash distance for near-duplicates (default {settings.IMGSIM_DUPLICATE_HAMMING})",
        )
        parser.add_argument("--tier", choices=Tier.values, action="append", help="print only these tiers")
        parser.add_argument("--incremental", action="store_true")
        parser.add_argument("--json", action="store_true", help="print the pairs as JSON")

    def handle(self, *, threshold, hamming, tier, incremental, json: bool, **options):
        scan = start_scan(incremental=incremental, similarity_threshold=threshold, hamming_threshold=hamming)
        if scan.status != "done":
            self.stderr.write(self.style.ERROR(f"Scan failed: {scan.error}"))
            return
        pairs = DuplicatePair.objects.select_related("image_a", "image_b").order_by("tier", "-similarity")
        if tier:
            pairs = pairs.filter(tier__in=tier)
        rows = [
            {
                "image1_id": p.image_a_id,
                "image2_id": p.image_b_id,
                "image1_filename": p.image_a.original_name,
                "image2_filename": p.image_b.original_name,
                "similarity": round(p.similarity, 6),
                "tier": p.tier,
                "hamming": p.hamming,
            }
            for p in pairs
        ]
        if json:
            self.stdout.write(_dumps(rows))
            return
        for row in rows:
            self.stdout.write(
                f"{row['tier']:8s} {row['similarity']:.3f}  {row['image1_filename']}  ≈  {row['image2_filename']}"
            )
        self.stdout.write(
            self.style.SUCCESS(f"{scan.pairs} pair(s) in {scan.seconds:.1f} s; review them at /duplicates/")
        )


def _dumps(rows) -> str:
    return json.dumps(rows, indent=2, ensure_ascii=False)
