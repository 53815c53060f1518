"""Bulk actions on a large selection: tag, set a category, move to the trash and back.

    .venv/bin/python -m bench.bulk [--photos 10000]

A synthetic library (vectors in SQLite and in embedded Chroma), then each action on
every photo through the page's own endpoint (POST /bulk/ with "all matching"), as an
editor's click sends it. Prints the time until the answer (the database transaction)
and until search has followed (the index sync after commit, same request thread).
"""

import argparse
import time

from bench.common import setup_django, synthetic_library, table

MODEL = "bench/random-512"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=10_000)
    args = parser.parse_args()
    setup_django("bulk", IMGSIM_MODEL=MODEL, ALLOWED_HOSTS="testserver")
    from django.contrib.auth import get_user_model
    from django.test import Client

    from gallery.models import Metadata
    from gallery.roles import EDITOR
    from search.python_api import find_similar
    from search.reconcile import reindex

    synthetic_library(args.photos, model=MODEL)
    started = time.perf_counter()
    reindex()
    print(f"{args.photos} photos in SQLite; reindex into Chroma {time.perf_counter() - started:.1f} s")
    from django.contrib.auth.models import Group, Permission

    from gallery.roles import ensure_roles

    ensure_roles(Group, Permission)
    editor = get_user_model().objects.create_user("bench", password="x")
    editor.groups.add(Group.objects.get(name=EDITOR))
    client = Client()
    client.force_login(editor)

    rows, searchable = [], None
    for action, fields in [
        ("tags_add", {"tags": "bulk-tagged"}),
        ("category", {"category": "bulk-category"}),
        ("tags_remove", {"tags": "bulk-tagged"}),
        ("trash", {}),
    ]:
        started = time.perf_counter()
        answer = client.post(
            "/bulk/", {"action": action, "all": "1", "query": "", **fields}, headers={"HX-Request": "true"}
        )
        seconds = time.perf_counter() - started  # Django's test client runs on_commit work before returning
        assert answer.status_code == 200, answer.content[:300]
        rows.append([action, args.photos, seconds, args.photos / seconds])
        if action == "category":  # search has followed: the filter finds them
            probe = [1.0] + [0.0] * 511
            searchable = len(
                find_similar(query_embedding=probe, top_k=5, filter_metadata={"category": "bulk-category"})
            )
    tagged = Metadata.objects.filter(category="bulk-category", image__trashed_at__isnull=False).count()
    print(table(["action", "photos", "seconds (answer + index sync)", "photos/s"], rows))
    print(f"check: {tagged} photos have the category (then trashed); search found {searchable} of a top 5 with it")


if __name__ == "__main__":
    main()
