"""Page benchmark: server time of the gallery, detail and search pages at 10k photos.

    .venv/bin/python -m bench.pages [--photos 10000] [--requests 200] [--int8]

Through Django's test client (in process, full middleware stack, a logged-in
user). For search, the time spent in the model (text encoder) and in the vector
index is measured separately and subtracted: the target is about the app's own work.
With --int8 the model may run int8 where auto measures it fastest (IMGSIM_ALLOW_INT8,
marked as checked: random weights have nothing to check).
"""

import argparse
import gc
import time

from bench.common import full_size_clip, percentiles, setup_django, synthetic_library, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--int8", action="store_true", help="let auto choose int8 (IMGSIM_ALLOW_INT8)")
    args = parser.parse_args()
    model = full_size_clip()
    setup_django("pages", IMGSIM_MODEL=model, ALLOWED_HOSTS="testserver", IMGSIM_ALLOW_INT8="1" if args.int8 else "0")
    if args.int8:
        from search.paths import remember_int8_check

        remember_int8_check(model, {"passed": True, "note": "bench.pages on random weights, not a check"})
    from django.contrib.auth import get_user_model
    from django.test import Client

    from gallery.models import Image
    from imgsim_site import heap
    from search import index as index_module
    from search.embeddings import get_embedder
    from search.paths import cpu_model
    from search.reconcile import reindex

    synthetic_library(args.photos, model=model)
    reindex()
    user = get_user_model().objects.create_user("bench", password="x")
    client = Client()
    client.force_login(user)

    spent = {"model": 0.0, "index": 0.0}

    def timing(name, function):
        def wrapper(*a, **k):
            started = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                spent[name] += (time.perf_counter() - started) * 1000

        return wrapper

    embedder = get_embedder()
    embedder.encode_texts = timing("model", embedder.encode_texts)
    index_module.ChromaIndex.query = timing("index", index_module.ChromaIndex.query)
    some_id = Image.objects.order_by("pk").values_list("pk", flat=True)[args.photos // 2]

    pages = [
        ("gallery, 60 thumbnails", "/", {}, {}),
        ("gallery, filtered", "/", {"category": "rest", "camera": "ten"}, {}),
        ("gallery, next page (htmx)", "/", {"page": 3}, {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "grid-more"}),
        ("photo detail", f"/images/{some_id}/", {}, {}),
        # Words not searched before, each time (a query asked again is not encoded again: search.text_queries).
        ("search, text", "/search/", lambda i: {"q": f"a cat on sofa {i}"}, {"HTTP_HX_REQUEST": "true"}),
        (
            "search, text + filter",
            "/search/",
            lambda i: {"q": f"a red car at night {i}", "camera": "ten"},
            {"HTTP_HX_REQUEST": "true"},
        ),
        (
            "search, same text, filter changed",
            "/search/",
            lambda i: {"q": "a dog on a beach", "camera": ("ten", "nine", "")[i % 3]},
            {"HTTP_HX_REQUEST": "true"},
        ),
    ]
    # Measured as a web worker runs: the model loaded, then what the process holds frozen (imgsim_site.heap).
    embedder.encode_texts(["a warm-up"])
    pause_before = collection_pause()
    heap.serve()
    full_collections = gc.get_stats()[2]["collections"]
    rows = []
    for label, url, params, headers in pages:
        asked = params if callable(params) else lambda i, fixed=params: fixed
        for i in range(5):
            assert client.get(url, asked(-1 - i), **headers).status_code == 200
        totals, own = [], []
        for i in range(args.requests):
            spent["model"] = spent["index"] = 0.0
            started = time.perf_counter()
            response = client.get(url, asked(i), **headers)
            total = (time.perf_counter() - started) * 1000
            assert response.status_code == 200
            totals.append(total)
            own.append(total - spent["model"] - spent["index"])
        rows.append([label, *percentiles(totals), *percentiles(own)])
    print(
        f"{args.photos:,} photos, {args.requests} requests each, Django test client, model {embedder.precision}"
        f"{' (int8 allowed)' if args.int8 else ''}, {cpu_model()} (ms)"
    )
    print(table(["page", "total p50", "total p95", "app p50", "app p95"], rows))
    print("app = total minus time in the text encoder and in the vector index")
    full_collections = gc.get_stats()[2]["collections"] - full_collections
    pause_after = collection_pause()
    print(
        f"a full garbage collection (the pause of the request that triggers one): {pause_before:.1f} ms;"
        f" after these requests, with what a web worker holds once set up frozen: {pause_after:.1f} ms"
        f" ({full_collections} full collections ran during the requests)"
    )


def collection_pause() -> float:
    """The median time of a full garbage collection in this process (ms)."""
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        gc.collect()
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)[2]


if __name__ == "__main__":
    main()
