"""Scale benchmark: a synthetic library of --size photos, every figure of issue 19 against its goal.

    .venv/bin/python -m bench.scale --size 100000            # ~5 minutes on 2 cores
    .venv/bin/python -m bench.scale --size 1000000           # the million: give it an hour
    .venv/bin/python -m bench.scale --size 100000 --vectors random   # HNSW's worst case
    DATABASE_URL=postgres://... .venv/bin/python -m bench.scale      # on PostgreSQL (its tables are emptied)

The library is written straight into the database (no image files): clustered unit
vectors (a mixture of Gaussians on the sphere, as photo embeddings cluster by
subject) or uniformly random ones, Zipf-distributed categories, tags and cameras,
dates over fifteen years. Then, in this one process: the index build (reindex),
search latency and recall@10 against exact search for every path (unfiltered,
filters keeping 0.5% to 90%, a tag, a query with a negative), the gallery's first
and deep pages, a photo page, the stats page right after a change, the column
cache's memory (RSS and PSS), reconcile when nothing is wrong, and the duplicate
scan: the clustered full scan, its pair recall against comparing every pair (one
photo in fifty is planted as a second shot of another; every pair of the whole
library up to --duplicates-up-to photos, since that is quadratic, of a 10,000-photo
sample above), and the incremental scan of 1,000 new photos.
"""

import argparse
import contextlib
import os
import platform
import subprocess
import time
from pathlib import Path

from bench.common import at_least_one, percentiles, setup_django, table, timed

MODEL = "bench/random-512"
DIMENSION = 512
CATEGORIES = ["family", "travel", "food", "pets", "work", "nature", "city", "sport", "party", "kids"]
CAMERAS = [
    ("Apple", "iPhone 13"),
    ("Apple", "iPhone 15 Pro"),
    ("Samsung", "Galaxy S23"),
    ("Google", "Pixel 8"),
    ("Canon", "EOS R5"),
    ("Sony", "ILCE-7M4"),
    ("Fujifilm", "X-T5"),
    ("Nikon", "Z 6II"),
]


def cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def zipf_choice(rng, count: int, size: int):
    """Indices 0..count-1 drawn with probability proportional to 1/(rank+1): a few common, a long tail."""
    import numpy as np

    weights = 1 / np.arange(1, count + 1)
    return rng.choice(count, size=size, p=weights / weights.sum())


def unit_vectors(rng, count: int, kind: str, centres: int = 1000):
    import numpy as np

    if kind == "random":
        vectors = rng.normal(size=(count, DIMENSION)).astype(np.float32)
    else:
        middle = rng.normal(size=(centres, DIMENSION)).astype(np.float32)
        vectors = middle[rng.integers(0, centres, count)] + 0.7 * rng.normal(size=(count, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # One photo in fifty is a second shot of an earlier one (similarity 0.90-0.995), so the
    # duplicate scan has pairs to find and its recall can be measured.
    shots = np.flatnonzero(rng.random(count) < 0.02)
    shots = shots[shots > 0]
    originals = (rng.random(len(shots)) * shots).astype(np.int64)
    spread = rng.uniform(0.1, 0.48, (len(shots), 1)) / np.sqrt(DIMENSION)
    vectors[shots] = vectors[originals] + spread * rng.normal(size=(len(shots), DIMENSION))
    vectors[shots] /= np.linalg.norm(vectors[shots], axis=1, keepdims=True)
    return vectors


def query_vectors(rng, vectors, count: int) -> dict:
    """Queries of three kinds: near a photo (a photo query), far from every photo as CLIP's text
    queries are (similarity ~0.3 to the best), and uniformly random (HNSW's worst case); plus a
    text-like query minus another (a search with "not" terms)."""
    import numpy as np

    def unit(matrix):
        return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)

    def noise():
        return rng.normal(size=(count, DIMENSION)) / np.sqrt(DIMENSION)

    sources = vectors[rng.integers(0, len(vectors), count)]
    text = unit(0.3 * sources + 0.95 * noise())
    other = unit(0.3 * vectors[rng.integers(0, len(vectors), count)] + 0.95 * noise())
    return {
        "image-like": unit(sources + 0.8 * noise()),
        "text-like": text,
        "text-like with a negative": unit(text - 0.3 * other),
        "random": unit(rng.normal(size=(count, DIMENSION))),
    }


def write_library(count: int, kind: str, *, seed: int = 0, batch: int = 5000, first: int = 0):
    """Insert count photos with vectors and metadata (bulk inserts, no signals); return the vectors."""
    import numpy as np
    from django.db import transaction
    from django.utils import timezone

    from gallery.models import Image, ImageVector, Metadata, Tag
    from gallery.storage import original_relpath

    rng = np.random.default_rng(seed + first)
    vectors = unit_vectors(rng, count, kind)
    tags = [Tag.objects.get_or_create(name=f"tag{n:03d}")[0] for n in range(200)]
    now = timezone.now()
    category = zipf_choice(rng, len(CATEGORIES), count)
    camera = zipf_choice(rng, len(CAMERAS), count)
    days = rng.integers(0, 15 * 365, count)
    tag_count = rng.integers(0, 4, count)
    tag_pick = zipf_choice(rng, len(tags), count * 3).reshape(count, 3)
    through = Metadata.tags.through
    for start in range(0, count, batch):
        stop = min(count, start + batch)
        with transaction.atomic():
            images = Image.objects.bulk_create(
                [
                    Image(
                        sha256=f"{first + i:064x}",
                        file=original_relpath(f"{first + i:064x}", "JPEG"),
                        original_name=f"IMG_{first + i:07d}.jpg",
                        format="PNG" if i % 20 == 7 else "JPEG",
                        width=4032 if i % 3 else 3024,
                        height=3024 if i % 3 else 4032,
                        byte_size=2_500_000 + i % 997 * 1000,
                        added_at=now - timezone.timedelta(seconds=count - i),
                        embedding_model=MODEL,
                        embedding_state="done",
                    )
                    for i in range(start, stop)
                ]
            )
            ImageVector.objects.bulk_create(
                [ImageVector(image=image, data=vectors[i].tobytes()) for i, image in zip(range(start, stop), images)]
            )
            Metadata.objects.bulk_create(
                [
                    Metadata(
                        image=image,
                        category=CATEGORIES[category[i]],
                        camera_make=CAMERAS[camera[i]][0],
                        camera_model=CAMERAS[camera[i]][1],
                        taken_at=now - timezone.timedelta(days=int(days[i]), seconds=i % 86400),
                        latitude=45.0 + i % 90 / 10 if i % 4 == 0 else None,
                        longitude=7.0 if i % 4 == 0 else None,
                    )
                    for i, image in zip(range(start, stop), images)
                ]
            )
            through.objects.bulk_create(
                [
                    through(metadata_id=image.pk, tag_id=tags[pick].pk)
                    for i, image in zip(range(start, stop), images)
                    for pick in set(tag_pick[i, : tag_count[i]].tolist())
                ]
            )
    return vectors


def memory_mb() -> dict:
    """This process's resident and proportional set sizes, from /proc (Linux), and "Files": how much
    of the vector files (the float16 file and its int8 and int4 twins) it has resident."""
    found = {}
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss", "Anonymous"):
                found[name] = int(rest.split()[0]) / 1024
    found["Files"], in_vector_file = 0.0, False
    with open("/proc/self/smaps") as maps:
        for line in maps:
            if line[:1] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:  # a mapping's first line
                in_vector_file = settings_vector_dir() in line
            elif in_vector_file and line.startswith("Rss:"):
                found["Files"] += int(line.split()[1]) / 1024
    return found


WORKERS = 2


def worker_memory(args) -> dict:
    """RSS and PSS growth of WORKERS processes that each build the column cache and search.

    They run at the same time, as gunicorn's workers do, and each makes one exact pass
    over every vector (every page of the vector file resident in both): RSS counts the
    file in full in each, though the page cache holds it once.
    """
    import json
    import sys

    command = [sys.executable, "-m", "bench.scale", "--size", str(args.size), "--memory-worker"]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    workers = [subprocess.Popen(command, **pipes) for _ in range(WORKERS)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", "a memory worker failed (its output is above)"
    figures = []
    for worker in workers:
        worker.stdin.write("\n")
        worker.stdin.flush()
        figures.append(json.loads(worker.stdout.readline()))
        worker.wait()
    # The kernel's PSS is approximate for large folios (here one worker counted the shared file's
    # pages as its own, the other as shared), so the share is worked out: each worker's own memory
    # (anonymous) plus its part of the vector files' pages that searching made resident (the pass
    # reads all of the file or of a twin, whichever search_pass chose; the rows scored again are read, not mapped).
    file_mb = max(f["Files"] for f in figures)
    own = max(f["Anonymous"] for f in figures)
    return {
        f"web process memory for search, {WORKERS} workers: RSS growth (max)": max(f["Rss"] for f in figures),
        f"web process memory for search, {WORKERS} workers: own (anonymous) growth (max)": own,
        f"web process memory for search: own + vector files resident ({file_mb:,.0f} MB) / {WORKERS} workers": own
        + file_mb / WORKERS,
    }


def settings_vector_dir() -> str:
    from django.conf import settings

    return str(settings.IMGSIM_VECTOR_DIR)


def memory_worker(args) -> None:
    import json
    import sys

    setup_django(_data_name(args.size), keep=True, IMGSIM_MODEL=MODEL, IMGSIM_WORKER="0")
    import numpy as np

    from search.columns import column_cache
    from search.query import nearest
    from search.sync import current_generation

    before = memory_mb()
    column_cache.columns(current_generation())
    rng = np.random.default_rng(2)
    for vector in rng.standard_normal((20, DIMENSION)).astype(np.float32):
        vector /= np.linalg.norm(vector)
        nearest(vector, top_k=10)  # a pass over every vector, as a search makes it
        nearest(vector, top_k=10, where={"category": "kids"})
    print("ready", flush=True)
    sys.stdin.readline()  # both workers hold their pages now
    after = memory_mb()
    print(json.dumps({name: after[name] - before[name] for name in ("Rss", "Pss", "Anonymous", "Files")}), flush=True)


def timed_requests(client, url: str, count: int, *, unseen: bool = False, **headers) -> tuple[float, float]:
    """Percentiles of a page's time right after a change (page caches are per library version).

    Cards are cached by what they show, so a grid after a change re-renders only the
    cards that changed; unseen: none of its cards was shown before.
    """
    from django.core.cache import caches

    from gallery.versions import bump

    samples = []
    for _ in range(count):
        bump()
        if unseen:
            caches["cards"].clear()
        started = time.perf_counter()
        response = client.get(url, **headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return percentiles(samples)


def measure(args) -> list[list]:
    data = setup_django(
        _data_name(args.size), keep=args.reuse, IMGSIM_MODEL=MODEL, ALLOWED_HOSTS="testserver", IMGSIM_WORKER="0"
    )
    from django.core.management import call_command
    from django.db import connection

    if not args.reuse and connection.vendor != "sqlite":  # the data dir is new; the server's database is not
        call_command("flush", interactive=False, verbosity=0)
    import numpy as np
    import torch
    from django.contrib.auth import get_user_model
    from django.test import Client

    from gallery.models import Image, Metadata
    from gallery.planner import refresh_statistics
    from imgsim_site import heap
    from search.columns import column_cache
    from search.duplicates.scan import find_pairs
    from search.query import nearest
    from search.reconcile import reconcile, reindex
    from search.sync import current_generation, writing_index

    rows: list[list] = []

    def report(step: str, figure: float, unit: str, goal: str, ok: bool | None):
        rows.append([step, f"{figure:,.3g}" if figure < 1000 else f"{figure:,.0f}", unit, goal, _verdict(ok)])
        print(f"  {step}: {figure:,.3f} {unit} (goal {goal})", flush=True)

    if args.reuse and Image.objects.count() > args.size:  # the 1,000 new photos of the last run's incremental scan
        Image.objects.filter(pk__gt=Image.objects.order_by("pk").values_list("pk", flat=True)[args.size - 1]).delete()
    if args.reuse and Image.objects.count() == args.size:
        print(f"reusing the {args.size:,} photos and the index in {data}", flush=True)
        from gallery import vectors as stored_vectors

        ids = np.array(Image.objects.order_by("pk").values_list("pk", flat=True))
        found = stored_vectors.load(ids.tolist())
        vectors = np.stack([found[pk] for pk in ids.tolist()])
        del found
    else:
        print(f"writing {args.size:,} photos ({args.vectors} vectors) into {data}", flush=True)
        seconds, vectors = timed(write_library, args.size, args.vectors)
        report("generate the library", seconds / 1000, "s", "-", None)
        refresh_statistics()  # as ingest does
        ids = np.array(Image.objects.order_by("pk").values_list("pk", flat=True))
        seconds = reindex(on_progress=_progress("reindex", args.size)).seconds
        report("reindex", seconds / 60, "min", "<= 10 min at 1M", seconds / 60 * 1_000_000 / args.size <= 10)
    if args.resume:
        _stop_half_way(reindex, args.size)
        rebuilt = reindex(on_progress=_progress("reindex going on", args.size))
        report(f"reindex going on from {rebuilt.resumed:,} written", rebuilt.seconds / 60, "min", "resumable", None)

    seconds, columns = timed(column_cache.columns, current_generation())
    report("column cache build (writes the vector file if none)", seconds / 1000, "s", "-", None)
    from search.paths import search_pass

    print(f"  search's pass over every vector: {search_pass()} (measured once on this machine)", flush=True)
    for label, growth in worker_memory(args).items():
        judged = "vector file" in label and args.size >= 1_000_000
        report(label, growth, "MB", "<= 600 MB at 1M", growth <= 600 if judged else None)

    heap.serve()  # timed as in a web worker, which freezes what it holds once set up (imgsim_site.heap)
    rng = np.random.default_rng(1)
    probes = query_vectors(rng, vectors, args.queries)
    category = np.array(Metadata.objects.order_by("pk").values_list("category", flat=True))
    filters = {
        "unfiltered": (None, None),
        f"category kids ({(category == 'kids').mean():.1%})": ({"category": "kids"}, category == "kids"),
        f"category travel ({(category == 'travel').mean():.1%})": ({"category": "travel"}, category == "travel"),
        f"not family ({(category != 'family').mean():.1%})": ({"category": {"$ne": "family"}}, category != "family"),
        "tag tag000": ({"tags": "tag000"}, np.isin(ids, columns.ids[columns.tags.get("tag000", [])])),
    }
    for label, (where, mask) in filters.items():
        kinds = probes if where is None else {kind: probes[kind] for kind in ("image-like", "text-like")}
        candidates, candidate_ids = (vectors, ids) if mask is None else (vectors[mask], ids[mask])
        for kind, batch in kinds.items():
            # The true answers first, all at once, by torch: numpy's BLAS threads keep spinning after a
            # product and slowed the search timed right after it (by ~30 ms a query at a million photos),
            # where torch's are the threads search itself runs on.
            scores = (torch.from_numpy(candidates) @ torch.from_numpy(batch.T.copy())).numpy()
            truth = [set(candidate_ids[np.argpartition(-scores[:, n], 10)[:10]].tolist()) for n in range(len(batch))]
            del scores
            for probe in batch[:3]:
                nearest(probe, top_k=10, where=where)
            samples, recall = [], []
            for probe, exact in zip(batch, truth):
                ms, hits = timed(nearest, probe, top_k=10, where=where)
                samples.append(ms)
                recall.append(len(exact & {hit.image_id for hit in hits}) / 10)
            p50, p95 = percentiles(samples)
            worst_case = kind == "random"
            report(f"search {label}, {kind}: p95", p95, "ms", "<= 30 ms", p95 <= 30)
            report(
                f"search {label}, {kind}: recall@10",
                float(np.mean(recall)),
                "",
                "reported (worst case)" if worst_case else ">= 0.98",
                None if worst_case else bool(np.mean(recall) >= 0.98),
            )

    # A server whose page cache went to other files (a reindex writes ~10 GB at a million): each query
    # starts with the vector files dropped from it (the pages a process maps stay).
    samples = []
    for probe in probes["image-like"]:
        _drop_from_page_cache(Path(settings_vector_dir()))
        samples.append(timed(nearest, probe, top_k=10)[0])
    p95 = percentiles(samples)[1]
    report("search unfiltered, image-like, vector files out of the page cache: p95", p95, "ms", "<= 30 ms", p95 <= 30)

    for rough_pass in ("fp16", "int8", "int4"):  # the one search_pass measured fastest here is what search uses
        samples = [timed(columns.vectors.best, probe, 10, rough_pass=rough_pass)[0] for probe in probes["text-like"]]
        chosen = " (search's)" if rough_pass == search_pass() else ""
        report(f"exact pass over every vector, {rough_pass}{chosen}: p95", percentiles(samples)[1], "ms", "-", None)

    client = Client()
    client.force_login(get_user_model().objects.get_or_create(username="bench")[0])  # a --reuse run has one
    deep = max(1, args.size // 60 // 2)
    newest_first = ids[::-1]  # the synthetic photos were added in id order
    scroll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "grid-more"}
    tagged = Metadata.tags.through.objects.filter(tag__name="tag050").count()
    year = time.gmtime().tm_year - 7  # the synthetic dates span fifteen years back from today
    for label, url, headers in (
        ("gallery first page", "/", {}),
        ("gallery first page, cards not shown before", "/", {"unseen": True}),
        (f"gallery scroll, page {deep:,}", f"/?page={deep}&after={newest_first[(deep - 1) * 60 - 1]}", scroll),
        (f"gallery numbered page {deep:,} (offset)", f"/?page={deep}", {}),
        ("gallery filtered: a category", "/?category=kids", {}),
        ("gallery filtered: the most used tag", "/?tag=tag000", {}),
        (f"gallery filtered: a tag on {tagged / len(ids):.1%}", "/?tag=tag050", {}),
        ("gallery filtered: a year", f"/?year={year}", {}),
        ("gallery sorted by date taken", "/?sort=taken", {}),
        ("gallery sorted by date taken, a year", f"/?sort=taken&year={year}", {}),
        ("photo page", f"/images/{ids[len(ids) // 2]}/", {}),
    ):
        unseen = headers.pop("unseen", False)
        client.get(url, **headers)
        p50, p95 = timed_requests(client, url, args.requests, unseen=unseen, **headers)
        goal = 20 if label == "photo page" else 30
        report(f"{label}: p95", p95, "ms", f"<= {goal} ms", None if "offset" in label else p95 <= goal)
        report(f"{label}: median", p50, "ms", "-", None)  # steadier than p95 on a shared machine
    editor = Client()
    editor.force_login(get_user_model().objects.get_or_create(username="bench-editor", is_superuser=True)[0])
    editor.get("/trash/")
    p50, p95 = timed_requests(editor, "/trash/", args.requests)
    report("trash page: p95", p95, "ms", "-", None)
    from gallery.stats import _compute, wait_for_refresh

    # What a thread of one web process spends after each change (the page meanwhile shows the last numbers).
    ms, _ = timed(_compute, charts=True)
    report("statistics computed anew (in the background)", ms / 1000, "s", "-", None)
    client.get("/stats/")
    wait_for_refresh()
    changed = []
    for i in range(5):
        meta = Metadata.objects.get(pk=ids[i])
        meta.title = f"edited {i}"
        meta.save()
        started = time.perf_counter()
        assert client.get("/stats/").status_code == 200
        changed.append((time.perf_counter() - started) * 1000)
        wait_for_refresh()
    report("stats right after a change: p95", percentiles(changed)[1], "ms", "<= 50 ms", percentiles(changed)[1] <= 50)

    # --deep reads every entry back (and records what it found, as a first run after an upgrade would).
    ms, _ = timed(reconcile, embed=False, delete_orphan_files=False, deep=True)
    report("reconcile --deep, nothing wrong", ms / 1000, "s", "-", None)
    ms, _ = timed(reconcile, embed=False, delete_orphan_files=False)
    report("reconcile, nothing wrong", ms / 1000, "s", "<= 60 s at 1M", ms / 1000 * 1_000_000 / args.size <= 60)

    from django.conf import settings

    settings.IMGSIM_DUPLICATE_EXACT_PAIRS = 0  # the clustered scan, whatever the size
    ms, clustered = timed(find_pairs)
    clustered = {(p.a, p.b) for p in clustered}
    report("duplicate scan, full (clustered)", ms / 1000, "s", "<= 300 s at 1M", ms / 1000 <= 300)
    settings.IMGSIM_DUPLICATE_EXACT_PAIRS = 10**18
    if args.size <= args.duplicates_up_to:
        ms, exact = timed(find_pairs)
        exact = {(p.a, p.b) for p in exact}
        report("duplicate scan, full (every pair)", ms / 1000, "s", "-", None)
        label = f"clustered scan's pair recall ({len(exact):,} pairs)"
    else:  # every pair of a sample of photos, against the whole library
        from search.similarity import similar_pairs

        sample = np.sort(np.random.default_rng(2).choice(len(ids), 10_000, replace=False))
        i, j, similarity = similar_pairs(columns.vectors.matrix(), sample, settings.IMGSIM_DUPLICATE_THRESHOLD, None)
        exact = {(min(a, b), max(a, b)) for a, b in zip(ids[i].tolist(), ids[j].tolist())}
        clustered = {pair for pair in clustered if np.isin(pair, ids[sample]).any()}
        label = f"clustered scan's pair recall (the {len(exact):,} pairs of 10,000 photos)"
    recall = len(clustered & exact) / max(1, len(exact))
    report(label, recall, "", ">= 0.99", recall >= 0.99)
    settings.IMGSIM_DUPLICATE_EXACT_PAIRS = 10_000_000_000
    last = int(ids.max())
    write_library(1000, args.vectors, first=args.size)
    with writing_index():  # as syncing them would: the scan's column cache then takes them in
        pass
    ms, _ = timed(find_pairs, since_id=last)
    report("duplicate scan, 1,000 new photos", ms / 1000, "s", "<= 5 s", ms / 1000 <= 5)
    return rows


def _progress(step: str, total: int):
    last, done = [time.monotonic()], [0]

    def show(more: int) -> None:
        done[0] += more
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"  {step}: {done[0]:,} of {total:,}", flush=True)

    return show


def _drop_from_page_cache(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as file:
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _stop_half_way(reindex, size: int) -> None:
    """Run a reindex and stop it once half the library is written, as a kill or a full disk would."""

    class Stop(Exception):
        pass

    done = [0]

    def count(more: int) -> None:
        done[0] += more
        if done[0] >= size // 2:
            raise Stop

    print(f"  reindex stopped at half of {size:,} ...", flush=True)
    with contextlib.suppress(Stop):
        reindex(on_progress=count, restart=True)


def _data_name(size: int) -> str:
    """The data dir's name: one per size and kind of database (the vector files and index follow the rows)."""
    return f"scale-{size}" + ("-postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "")


def _database() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        version = connection.pg_version  # e.g. 150014
        return f"PostgreSQL {version // 10000}.{version % 10000}"
    return f"SQLite {connection.Database.sqlite_version}"


def _verdict(ok: bool | None) -> str:
    return {True: "met", False: "NOT MET", None: "-"}[ok]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--size", type=at_least_one, default=100_000, help="photos in the synthetic library (default 100,000)"
    )
    parser.add_argument("--vectors", choices=["clustered", "random"], default="clustered")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the library a previous run of this size left (no generation)"
    )
    parser.add_argument("--queries", type=at_least_one, default=100, help="search queries per path")
    parser.add_argument(
        "--requests",
        type=at_least_one,
        default=30,
        help="page requests per page (the p95 of fewer than 20 is their slowest)",
    )
    parser.add_argument(
        "--duplicates-up-to",
        type=int,
        default=200_000,
        help="compare every pair (the clustered scan's recall) only up to this size",
    )
    parser.add_argument(
        "--resume", action="store_true", help="also stop a reindex half-way and time the one that goes on from it"
    )
    parser.add_argument("--memory-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        return memory_worker(args)
    started = time.perf_counter()
    rows = measure(args)
    print(f"\n{args.size:,} photos, {args.vectors} vectors, {_database()}, {cpu_model()}, {_cores()} cores")
    print(table(["step", "figure", "unit", "goal", "verdict"], rows))
    print(f"whole run: {(time.perf_counter() - started) / 60:.1f} min")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
