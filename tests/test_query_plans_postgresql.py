"""On PostgreSQL the grid's pages are planned with statistics about what they filter by.

A tag named by its id lets the planner use what ANALYZE knows of that id (a tag on
most photos: walk the grid's order; on a few: list them and sort), and an index
sorted DESC NULLS LAST gives the grid sorted by date taken an order to walk. Without
them (bench.scale at 100k) a page's query took 20-70 ms instead of about one.
"""

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.utils import timezone

from gallery.filters import FilterForm
from gallery.models import Metadata, Tag
from gallery.planner import refresh_statistics
from gallery.selectors import image_list
from tests.rows import photo_rows

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans; SQLite's in test_query_plans"),
]
PHOTOS = 20_000


@pytest.fixture
def library():
    now = timezone.now()
    images = photo_rows(PHOTOS)
    Metadata.objects.bulk_create(
        Metadata(
            image=image,
            category="kids" if i % 25 == 0 else "travel",
            taken_at=None if i % 50 == 0 else now - timedelta(days=i % 700, seconds=i),
        )
        for i, image in enumerate(images)
    )
    common, rare = Tag.objects.create(name="sea"), Tag.objects.create(name="snow")
    through = Metadata.tags.through
    through.objects.bulk_create(through(metadata_id=image.pk, tag_id=common.pk) for image in images[::2])
    through.objects.bulk_create(through(metadata_id=image.pk, tag_id=rare.pk) for image in images[::1000])
    refresh_statistics()
    return images


def plan(filters: dict) -> str:
    query = image_list(form=FilterForm(filters), page=True).values("pk")[:61].query
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_grid_sorted_by_date_taken_walks_an_index(library):
    found = plan({"sort": "taken"})
    assert "metadata_taken_desc" in found and "Sort" not in found, found


def test_a_common_tag_walks_the_grids_order_and_a_rare_one_is_listed(library):
    common = plan({"tag": "sea"})
    # The live photos' own index: no photo's row read to check the trash.
    assert "Index Only Scan using image_live_grid" in common, common
    assert "Sort" not in common, common
    rare = plan({"tag": "snow"})
    assert re.search(r"Index Cond: \(\w*\.?tag_id = ", rare), rare  # the tag's 20 photos, from its index
    pages = [list(image_list(form=FilterForm({"tag": tag}), page=True)[:61]) for tag in ("sea", "snow")]
    assert [len(page) for page in pages] == [61, PHOTOS // 1000]


def test_a_tag_on_a_few_percent_is_listed_and_checked_in_a_hash_along_the_grids_order(library, monkeypatch):
    from gallery import planner

    through = Metadata.tags.through
    hills = Tag.objects.create(name="hills")
    through.objects.bulk_create(through(metadata_id=image.pk, tag_id=hills.pk) for image in library[::40])
    refresh_statistics()
    monkeypatch.setattr(planner, "MANY", 200)  # the 500 photos of "hills" are many, as 2,000 are in a million
    walks = {"image_live_grid": {"tag": "hills"}, "metadata_taken_desc": {"tag": "hills", "sort": "taken"}}
    for order, filters in walks.items():
        found = plan(filters)
        assert order in found and "= ANY ('{" in found and "Sort" not in found, found
    monkeypatch.setattr(planner, "LISTED_UP_TO", 499)  # beyond the list's limit: its index probed per photo
    assert "= ANY" not in plan({"tag": "hills"})


def test_a_category_is_estimated_from_its_statistics(library):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN SELECT 1 FROM gallery_metadata WHERE UPPER(category) = UPPER(%s)", ["kids"])
        estimate = int(cursor.fetchone()[0].split("rows=")[1].split()[0])
    assert PHOTOS / 25 / 2 <= estimate <= PHOTOS / 25 * 2  # the default guess would be 0.5%: 100


@pytest.mark.parametrize("workers", [None, "2"])
def test_the_apps_connections_plan_without_parallel_workers_unless_asked(tmp_path, workers):
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "IMGSIM_PG_PARALLEL_WORKERS")}
    server = urlparse(os.environ["IMGSIM_TEST_DATABASE_URL"])  # the server's URL names no database of its own
    test_database = server._replace(path="/" + connection.settings_dict["NAME"]).geturl()
    env.update(IMGSIM_DATA_DIR=str(tmp_path), DATABASE_URL=test_database)
    if workers:
        env["IMGSIM_PG_PARALLEL_WORKERS"] = workers
    code = (
        "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='imgsim_site.settings';django.setup();"
        "from django.db import connection;c=connection.cursor();"
        "c.execute('SHOW max_parallel_workers_per_gather');print(c.fetchone()[0])"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == (workers or "0"), result.stderr
