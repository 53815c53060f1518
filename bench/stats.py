"""Statistics benchmark: the stats page at 100k photos: first load, right after a change, and cached.

.venv/bin/python -m bench.stats [--photos 100000] [--requests 50]
"""

import argparse
import time

from bench.common import percentiles, setup_django, synthetic_library, table

MODEL = "bench/random-512"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    setup_django("stats", IMGSIM_MODEL=MODEL, ALLOWED_HOSTS="testserver")
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client

    from search.reconcile import reindex

    synthetic_library(args.photos, model=MODEL)
    reindex()
    client = Client()
    client.force_login(get_user_model().objects.create_user("bench", password="x"))
    cold, warm = [], []
    for _ in range(max(3, args.requests // 10)):
        cache.clear()
        started = time.perf_counter()
        assert client.get("/stats/").status_code == 200
        cold.append((time.perf_counter() - started) * 1000)
    for _ in range(args.requests):
        started = time.perf_counter()
        assert client.get("/stats/").status_code == 200
        warm.append((time.perf_counter() - started) * 1000)
    # After a change (a title edited: the library version moves on), the page answers
    # with the previous numbers while a background thread computes the new ones.
    from gallery.models import Metadata
    from gallery.stats import wait_for_refresh

    changed = []
    for i in range(max(3, args.requests // 5)):
        meta = Metadata.objects.order_by("pk")[i]
        meta.title = f"edited {i}"
        meta.save()
        started = time.perf_counter()
        assert client.get("/stats/").status_code == 200
        changed.append((time.perf_counter() - started) * 1000)
        wait_for_refresh()  # let the refresh finish before the next change
    print(f"{args.photos:,} photos, /stats/ through Django's test client, this machine (ms)")
    print(
        table(
            ["case", "p50", "p95"],
            [
                ["first load (computed in the request)", *percentiles(cold)],
                ["right after a change (background refresh)", *percentiles(changed)],
                ["unchanged (cached)", *percentiles(warm)],
            ],
        )
    )


if __name__ == "__main__":
    main()
