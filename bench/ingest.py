"""Ingest benchmark: our pipeline vs a naive one on 12-megapixel JPEGs, same run.

    .venv/bin/python -m bench.ingest [--photos 64] [--rerun 1000] [--int8] [--rounds 3]

Ours: hash, one reduced-size decode (Image.draft) for renditions + embedder input,
two decode threads ahead of batched inference on the numeric path IMGSIM_PRECISION=auto
measured fastest here (search.paths), batched rows and index writes. Ours runs with
each explicit path too (fp32, bf16, onnx; int8 with --int8, unchecked on random
weights), with each path's model-alone rate: auto should be within 5% of the fastest.
Every path runs once a round, in turn, for --rounds rounds: the rates are medians and
auto is compared with another path round by round, as the machine's speed drifts.
Naive: full decode, renditions from it, fp32, one photo at a time, one transaction
(and so one index write) per photo. Both use the full-size ViT-B/32 architecture
(random weights unless IMGSIM_BENCH_MODEL is set) and write the same files and rows.
The photos are generated: noise + gradients + shapes, with EXIF, JPEG quality 90.
"""

import argparse
import hashlib
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import BENCH_DIR, ROOT, full_size_clip, setup_django, table, timed


def make_photos(folder: Path, count: int, size=(4000, 3000)) -> list[Path]:
    import numpy as np
    from PIL import Image, ImageDraw

    from tests.photos import exif_bytes

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"IMG_{i:04d}.jpg" for i in range(count)]
    if all(path.exists() for path in paths):
        return paths
    rng = np.random.default_rng(0)
    width, height = size
    noise = rng.normal(0, 12, (height, width, 3)).astype(np.int16)
    y, x = np.mgrid[0:height, 0:width]
    for i, path in enumerate(paths):
        tint = rng.uniform(0, 200, 3)
        gradient = tint + (x[..., None] * rng.uniform(-0.03, 0.03, 3)) + (y[..., None] * rng.uniform(-0.03, 0.03, 3))
        pixels = np.clip(gradient + np.roll(noise, int(rng.integers(0, width)), axis=1), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x0, x1 = sorted(rng.integers(0, width, 2))
            y0, y1 = sorted(rng.integers(0, height, 2))
            draw.ellipse([x0, y0, x1 + 1, y1 + 1], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        exif = exif_bytes(make="Canon", model="Canon EOS R5", lens="RF24-105mm", gps=(46.5, 7.9))
        image.save(path, "JPEG", quality=90, exif=exif)
    return paths


def naive_ingest(paths: list[Path], model_folder: str) -> float:
    """The straightforward pipeline: full decode, fp32, one photo and one transaction at a time."""
    from django.db import transaction
    from PIL import Image as PILImage
    from PIL import ImageOps

    from gallery import storage
    from gallery import vectors as stored_vectors
    from gallery.decoding import read_exif
    from gallery.models import Image, Metadata
    from search.embeddings import TransformersEmbedder

    embedder = TransformersEmbedder(model=model_folder, precision="fp32", batch_size=1)
    embedder.encode_texts(["warm up"])
    started = time.perf_counter()
    for path in paths:
        data = path.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        if Image.objects.filter(sha256=sha256).exists():
            continue
        opened = PILImage.open(io.BytesIO(data))
        exif = read_exif(opened)
        full = ImageOps.exif_transpose(opened.convert("RGB"))
        renditions = {}
        for kind, (edge, fmt) in storage.RENDITIONS.items():
            copy = full.copy()
            copy.thumbnail((edge, edge))
            buffer = io.BytesIO()
            copy.save(buffer, "WEBP" if fmt == "webp" else "JPEG", quality=80)
            renditions[kind] = buffer.getvalue()
        vector = embedder.encode_images([full])[0]
        storage.write_atomic(storage.original_relpath(sha256, "JPEG"), data)
        for kind, blob in renditions.items():
            storage.write_atomic(storage.rendition_relpath(sha256, kind), blob)
        with transaction.atomic():
            image = Image.objects.create(
                sha256=sha256,
                file=storage.original_relpath(sha256, "JPEG"),
                original_name=path.name,
                format="JPEG",
                width=full.width,
                height=full.height,
                byte_size=len(data),
                embedding_model=embedder.model_name,
                embedding_state="done",
            )
            stored_vectors.save({image.pk: vector})
            Metadata.objects.create(image=image, camera_make=exif.camera_make, camera_model=exif.camera_model)
    return time.perf_counter() - started


def model_alone_rate(vectorizer, batch_size: int, photos: int = 64) -> float:
    """Images/s of the model's calls alone, on preprocessed input: the ceiling for the whole pipeline."""
    import numpy as np

    size = vectorizer.input_size
    pixels = np.random.default_rng(0).normal(0, 1, (batch_size, 3, size, size)).astype(np.float32)
    vectorizer.encode_pixels(pixels)  # warm-up
    calls = max(1, photos // batch_size)
    ms, _ = timed(lambda: [vectorizer.encode_pixels(pixels) for _ in range(calls)])
    return calls * batch_size / (ms / 1000)


def run_child(kind: str, count: int, precision: str = "auto") -> dict:
    model = full_size_clip()
    int8 = precision in ("int8", "auto-int8")
    setup_django(
        f"ingest-{kind}",
        IMGSIM_MODEL=model,
        IMGSIM_PRECISION="fp32" if kind == "naive" else precision.removesuffix("-int8"),
        IMGSIM_ALLOW_INT8="1" if int8 else "0",
    )
    if int8:  # random weights: there is nothing to check; the rate is what is measured here
        from search.paths import remember_int8_check

        remember_int8_check(model, {"passed": True, "note": "bench.ingest on random weights, not a check"})
    from gallery.ingest import Pipeline, discover
    from gallery.models import Image

    if kind in ("naive", "ours"):
        paths = make_photos(BENCH_DIR / "photos-12mp", count)
    if kind == "naive":
        seconds = naive_ingest(paths, model)
        return {"added": Image.objects.count(), "seconds": seconds}
    if kind == "ours":
        started = time.perf_counter()
        pipeline = Pipeline()  # loads the model and opens the index
        pipeline.vectorizer.encode_texts(["warm up"])
        startup = time.perf_counter() - started
        sources, _ = discover(paths[0].parent)
        report = pipeline.run(sources[:count])
        return {
            "added": report.added,
            "seconds": report.seconds,
            "embedded": report.embedded,
            "precision": pipeline.vectorizer.precision,
            "startup": startup,
            "model_alone": model_alone_rate(pipeline.vectorizer, pipeline.batch_size),
        }
    # rerun: an already-ingested, in-place folder of `count` photos
    from tests.photos import write_library

    folder = BENCH_DIR / f"photos-small-{count}"
    if not folder.exists():
        write_library(folder, count, size=(320, 240))
    sources, _ = discover(folder)
    first = Pipeline(in_place=True, embed=False).run(sources)
    # The whole command, as a user runs it: Django's start-up included.
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "manage.py", "ingest", "--in-place", "--no-progress", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    return {"first_added": first.added, "summary": output.stdout.strip().splitlines()[0], "seconds": seconds}


def cpu_capability() -> str:
    """The CPU model and what it offers torch (the paths themselves are measured: search.paths)."""
    import torch

    from search.paths import cpu_model

    return f"{cpu_model()}, {torch.backends.cpu.get_cpu_capability()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--rerun", type=int, default=1000)
    parser.add_argument("--int8", action="store_true", help="also time the int8 path (unchecked on random weights)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every path, taken in turn (default 3)")
    parser.add_argument("--child", choices=["ours", "naive", "rerun"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.rounds = max(1, args.rounds)
    if args.child:
        print(json.dumps(run_child(args.child, args.count, args.precision)))
        return

    def child(kind: str, count: int, precision: str = "auto") -> dict:
        output = subprocess.run(
            [sys.executable, "-m", "bench.ingest", "--child", kind, "--count", str(count), "--precision", precision],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if output.returncode:
            sys.exit(f"benchmark step {kind} failed:\n{output.stderr}")
        output = output.stdout
        return json.loads(output.strip().splitlines()[-1])

    make_photos(BENCH_DIR / "photos-12mp", args.photos)
    names = ["auto", "fp32", "bf16", "onnx"] + (["int8", "auto-int8"] if args.int8 else [])
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        # The machine's speed drifts from one minute to the next: every round runs each path once,
        # in an order shifted by one each round, and a path is compared with another of its round.
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(child("ours", args.photos, name))
    naive = child("naive", args.photos)
    rerun = child("rerun", args.rerun)

    def rate(result: dict) -> float:
        return result["added"] / result["seconds"]

    def typical(name: str) -> dict:
        """The path's run of median rate."""
        return sorted(runs[name], key=rate)[(len(runs[name]) - 1) // 2]

    def paired(name: str, other: str) -> str:
        """name's rate over other's, round by round: the median and the spread."""
        ratios = sorted(rate(a) / rate(b) for a, b in zip(runs[name], runs[other]))
        spread = f" ({ratios[0]:.3f}-{ratios[-1]:.3f})" if len(ratios) > 1 else ""
        return f"{statistics.median(ratios):.3f}{spread}"

    ours = typical("auto")
    rate_ours, rate_naive = rate(ours), rate(naive)
    print(
        f"{args.photos} generated 12-megapixel JPEGs, CLIP ViT-B/32 architecture, this machine; "
        f"{args.rounds} round{'s' if args.rounds > 1 else ''} of every path, medians"
    )
    print(
        table(
            ["pipeline", "photos", "seconds", "images/s"],
            [
                [f"ours ({ours['precision']}, batched, draft decode)", ours["added"], ours["seconds"], rate_ours],
                ["naive (fp32, one at a time, full decode)", naive["added"], naive["seconds"], rate_naive],
            ],
        )
    )
    print(f"speed-up: {rate_ours / rate_naive:.1f}x")
    print(
        f"the model's calls alone ({ours['precision']}, CPU with {cpu_capability()}): {ours['model_alone']:.1f} "
        "images/s, the ceiling for the pipeline, whose decoding shares the same cores"
    )
    labels = {"auto-int8": "auto, int8 allowed"}
    rows = [
        [
            labels.get(name, name),
            typical(name)["precision"],
            statistics.median(result["model_alone"] for result in runs[name]),
            statistics.median(rate(result) for result in runs[name]),
            f"{min(map(rate, runs[name])):.2f}-{max(map(rate, runs[name])):.2f}",
        ]
        for name in names
    ]
    print(f"\neach numeric path on {cpu_capability()} (IMGSIM_PRECISION=...; {args.photos} photos a run)")
    print(table(["IMGSIM_PRECISION", "towers ran", "model alone images/s", "end-to-end images/s", "range"], rows))
    # auto's own candidates: int8 joins them only when allowed (and checked), compared on its own line.
    fastest = max(("fp32", "bf16", "onnx"), key=lambda name: statistics.median(map(rate, runs[name])))
    print("ratios of end-to-end rates, round by round (median, and the range over the rounds):")
    if args.int8:
        print(
            f"auto with int8 allowed / int8: {paired('auto-int8', 'int8')} (goal >= 0.95); "
            f"{statistics.median(map(rate, runs['auto-int8'])):.1f} images/s (goal >= 20)"
        )
    print(
        f"auto / the fastest path auto may choose without int8 ({fastest}): {paired('auto', fastest)} "
        f"(goal >= 0.95); auto / fp32: {paired('auto', 'fp32')}\n"
    )
    print(
        f"start-up before the first photo (model loaded and warmed, index opened): {ours['startup']:.1f} s; "
        f"with it, {ours['added'] / (ours['seconds'] + ours['startup']):.1f} images/s"
    )
    print(
        f"re-run over {rerun['first_added']} already-ingested photos: `manage.py ingest --in-place` took "
        f"{rerun['seconds']:.2f} s in all ({rerun['summary']})"
    )


if __name__ == "__main__":
    main()
