"""Search benchmark: index writes, filtered and unfiltered queries, reindex, encoder speed.

    .venv/bin/python -m bench.search                 # 10k and 100k vectors
    .venv/bin/python -m bench.search --sizes 10000   # quicker

Each size runs in its own process (a fresh data dir and Django). "ours" is
search.query.nearest (SQLite filter + exact scoring or ANN over-fetch); "chroma
where" is Chroma's own metadata filter on the same collection, in the same run.
recall@10 compares each path with exact brute force over the filtered vectors.
"""

import argparse
import json
import subprocess
import sys

from bench.common import ROOT, full_size_clip, percentiles, setup_django, synthetic_library, table, timed

FILTERS = {"1%": {"category": "one"}, "10%": {"camera_make": "ten"}, "90%": {"format": "JPEG"}}
MODEL = "bench/random-512"


def measure_size(size: int, queries: int) -> dict:
    setup_django(f"search-{size}", IMGSIM_MODEL=MODEL)
    import numpy as np

    from gallery.filters import to_chroma, to_q
    from gallery.models import Image
    from search.index import get_index
    from search.query import nearest
    from search.reconcile import reindex

    vectors = synthetic_library(size, model=MODEL)
    ids = np.array(list(Image.objects.order_by("pk").values_list("pk", flat=True)))
    rebuilt = reindex()
    result = {"size": size, "add_per_s": rebuilt.count / rebuilt.seconds, "reindex_s": rebuilt.seconds}
    rng = np.random.default_rng(1)
    probes = vectors[rng.integers(0, size, queries)] + 0.3 * rng.normal(size=(queries, vectors.shape[1]))
    probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
    index = get_index()
    for probe in probes[:5]:  # warm up caches
        nearest(probe, top_k=10)
    samples, recall = [], []
    for probe in probes:
        ms, hits = timed(nearest, probe, top_k=10)
        samples.append(ms)
        exact = set(ids[np.argsort(-(vectors @ probe))[:10]].tolist())
        recall.append(len(exact & {h.image_id for h in hits}) / 10)
    result["unfiltered"] = percentiles(samples)
    result["unfiltered_recall"] = float(np.mean(recall))
    for label, where in FILTERS.items():
        passing = set(Image.objects.filter(to_q(where)).values_list("pk", flat=True))
        mask = np.isin(ids, list(passing))
        ours, chroma, recall_ours, recall_chroma = [], [], [], []
        for n, probe in enumerate(probes):
            scores = vectors[mask] @ probe
            exact = set(ids[mask][np.argsort(-scores)[:10]].tolist())
            ms, hits = timed(nearest, probe, top_k=10, where=where)
            ours.append(ms)
            recall_ours.append(len(exact & {h.image_id for h in hits}) / 10)
            if n < max(20, queries // 4):  # Chroma's where is slow: fewer samples
                ms, found = timed(index.query, MODEL, probe, 10, where=to_chroma(where))
                chroma.append(ms)
                recall_chroma.append(len(exact & {int(pk) for pk, _ in found}) / 10)
        result[label] = {
            "ours": percentiles(ours),
            "chroma": percentiles(chroma),
            "recall_ours": float(np.mean(recall_ours)),
            "recall_chroma": float(np.mean(recall_chroma)),
        }
    return result


def measure_encoders() -> dict:
    import numpy as np

    setup_django("encoders")
    from search.embeddings import TransformersEmbedder
    from tests.photos import photo_image

    folder = full_size_clip()
    results = {}
    images = [photo_image(seed, size=(320, 240)) for seed in range(32)]
    outputs = {}
    for precision in ("fp32", "bf16"):
        embedder = TransformersEmbedder(model=folder, precision=precision)
        embedder.encode_texts(["warm up"])
        samples = [timed(embedder.encode_texts, ["a photo of a cat on a sofa"])[0] for _ in range(30)]
        pixels = np.stack([embedder.preprocess(image) for image in images])
        embedder.encode_pixels(pixels[:4])
        ms, outputs[precision] = timed(embedder.encode_pixels, pixels)
        results[precision] = {"text": percentiles(samples), "images_per_s": len(images) / (ms / 1000)}
    cosine = np.sum(outputs["fp32"] * outputs["bf16"], axis=1)
    results["bf16_cosine_min"] = float(cosine.min())
    results["bf16_cosine_mean"] = float(cosine.mean())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--encoders-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-encoders", action="store_true", help="skip the model timings")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_size(args.child, args.queries)))
        return
    if args.encoders_child:
        print(json.dumps(measure_encoders()))
        return

    def child(*extra) -> dict:
        output = subprocess.run(
            [sys.executable, "-m", "bench.search", *extra], cwd=ROOT, capture_output=True, text=True
        )
        if output.returncode:
            sys.exit(f"benchmark step {' '.join(extra)} failed:\n{output.stderr}")
        output = output.stdout
        return json.loads(output.strip().splitlines()[-1])

    rows, build = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        result = child("--child", str(size), "--queries", str(args.queries))
        build.append([f"{size:,}", result["add_per_s"], result["reindex_s"]])
        rows.append([f"{size:,}", "none", "ours (Chroma ANN)", *result["unfiltered"], result["unfiltered_recall"]])
        for label in FILTERS:
            entry = result[label]
            rows.append([f"{size:,}", label, "ours", *entry["ours"], entry["recall_ours"]])
            rows.append([f"{size:,}", label, "chroma where", *entry["chroma"], entry["recall_chroma"]])
    print("Index build (reindex from SQLite vectors)")
    print(table(["vectors", "add vectors/s", "reindex s"], build))
    print("\nTop-10 query latency (ms)")
    print(table(["vectors", "filter selects", "path", "p50", "p95", "recall@10"], rows))
    if not args.no_encoders:
        enc = child("--encoders-child")
        print("\nCLIP ViT-B/32 architecture (random weights unless IMGSIM_BENCH_MODEL is set), this machine")
        print(
            table(
                ["precision", "text p50 ms", "text p95 ms", "images/s (batch 32)"],
                [[p, *enc[p]["text"], enc[p]["images_per_s"]] for p in ("fp32", "bf16")],
            )
        )
        print(
            f"bf16 vs fp32 cosine on the same 32 images: min {enc['bf16_cosine_min']:.5f}, "
            f"mean {enc['bf16_cosine_mean']:.5f}"
        )


if __name__ == "__main__":
    main()
