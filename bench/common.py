"""Shared set-up for the benchmarks: a throwaway data dir, Django, synthetic libraries.

Benchmarks print figures; they assert nothing about time (the machines are shared).
Run them from the repository root, e.g. `.venv/bin/python -m bench.search`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(os.environ.get("IMGSIM_BENCH_DIR", tempfile.gettempdir())) / "imgsim-bench"


def setup_django(name: str, *, keep: bool = False, **env) -> Path:
    """Point imgsim at a fresh data dir under BENCH_DIR/name (or the one there, with keep) and migrate it."""
    data = BENCH_DIR / name
    if data.exists() and not keep:
        import shutil

        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "IMGSIM_DATA_DIR": str(data),
            "DJANGO_SETTINGS_MODULE": "imgsim_site.settings",
            "HF_HUB_OFFLINE": "1",
            "IMGSIM_PLAIN_STATIC": "1",
            "LOG_LEVEL": "WARNING",
            **env,
        }
    )
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return data


def full_size_clip(folder: Path | None = None) -> str:
    """A CLIP ViT-B/32 with random weights (the real one's cost) and a small trained tokenizer.

    Uses IMGSIM_BENCH_MODEL when set (e.g. real weights saved by download_model --to).
    """
    if os.environ.get("IMGSIM_BENCH_MODEL"):
        return os.environ["IMGSIM_BENCH_MODEL"]
    folder = folder or BENCH_DIR / "clip-vit-b32-random"
    if (folder / "config.json").exists():
        return str(folder)
    import torch
    from transformers import CLIPConfig, CLIPModel

    from tests.tiny_models import build_tiny_clip

    build_tiny_clip(folder)  # tokenizer and preprocessor files
    torch.manual_seed(0)
    config = CLIPConfig()  # the defaults are ViT-B/32: 224 px, patch 32, 512-d projection
    CLIPModel(config).save_pretrained(folder)
    import json

    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "size": {"shortest_edge": 224},
                "crop_size": {"height": 224, "width": 224},
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
            }
        )
    )
    return str(folder)


def at_least_one(text: str) -> int:
    """An argparse type for counts a benchmark divides by or takes percentiles of."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too few: at least 1")
    return value


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [[f"{c:.2f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def synthetic_library(count: int, *, dimension: int = 512, model: str, seed: int = 0, batch: int = 5000):
    """Insert count Image rows with random unit vectors and metadata of known selectivity.

    category "one" on 1% of rows, camera_make "ten" on 10%, format JPEG on 90%.
    Uses bulk_create (no signals): the index is built afterwards with reindex.
    Returns the (count, dimension) vector matrix in primary-key order.
    """
    import numpy as np
    from django.db import transaction
    from django.utils import timezone

    from gallery.models import Image, ImageVector, Metadata
    from gallery.storage import original_relpath

    rng = np.random.default_rng(seed)
    # Clustered vectors, like photo embeddings: a few hundred topics plus noise.
    centres = rng.normal(size=(256, dimension)).astype(np.float32)
    vectors = centres[rng.integers(0, 256, count)] + 0.6 * rng.normal(size=(count, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = timezone.now()
    for start in range(0, count, batch):
        with transaction.atomic():
            images = Image.objects.bulk_create(
                [
                    Image(
                        sha256=f"{i:064x}",
                        file=original_relpath(f"{i:064x}", "PNG" if i % 10 == 5 else "JPEG"),
                        original_name=f"photo_{i:06d}.jpg",
                        format="PNG" if i % 10 == 5 else "JPEG",
                        width=4000,
                        height=3000,
                        byte_size=3_000_000 + i,
                        added_at=now - timezone.timedelta(seconds=i),
                        embedding_model=model,
                        embedding_state="done",
                    )
                    for i in range(start, min(count, start + batch))
                ]
            )
            ImageVector.objects.bulk_create(
                [
                    ImageVector(image=image, data=vectors[image_index].tobytes())
                    for image_index, image in zip(range(start, start + batch), images)
                ]
            )
            Metadata.objects.bulk_create(
                [
                    Metadata(
                        image=image,
                        category="one" if i % 100 == 7 else "rest",
                        camera_make="ten" if i % 10 == 3 else "other",
                        title=f"Photo {i}",
                        taken_at=now - timezone.timedelta(days=i % 3650),
                    )
                    for i, image in zip(range(start, start + batch), images)
                ]
            )
    return vectors
