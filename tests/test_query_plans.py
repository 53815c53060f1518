"""The grid's pages and a photo's neighbours walk an index from where they are, at any library size.

Checked on the plans SQLite chooses once the planner has its statistics (ANALYZE,
run by ingest, reconcile and the migration that added the index): a plan that
sorts the library ("TEMP B-TREE FOR ORDER BY") costs ~100 ms per photo page at
100k photos (bench.scale).
"""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gallery.filters import FilterForm
from gallery.models import Image, Metadata, Tag
from gallery.planner import refresh_statistics
from gallery.selectors import image_list
from tests.photos import write_library
from tests.rows import photo_rows

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plans; PostgreSQL plans by its own statistics"),
]


@pytest.fixture
def big_library():
    now = timezone.now()
    images = photo_rows(3000)
    Metadata.objects.bulk_create(
        Metadata(image=image, taken_at=None if i % 50 == 0 else now - timedelta(days=i % 700))
        for i, image in enumerate(images)
    )
    Image.objects.filter(pk__in=[image.pk for image in images[:30]]).update(trashed_at=now)
    refresh_statistics()
    return images


def plan_of(sql: str, params=()) -> str:
    """SQLite's plan for a query, its steps joined by " / "."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return " / ".join(row[-1] for row in cursor.fetchall())


def test_the_grid_and_a_photos_neighbours_do_not_sort_the_library(big_library):
    from gallery.selectors import neighbours

    first_page = image_list(form=FilterForm({}))[:60].explain()
    assert "image_live_newest" in first_page and "TEMP B-TREE" not in first_page, first_page
    executed = []

    def keep(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    for image in Image.objects.select_related("metadata").filter(pk__in=[big_library[1500].pk, big_library[100].pk]):
        for sort in ("newest", "taken"):  # big_library[100] has no date taken
            with connection.execute_wrapper(keep):
                previous, following = neighbours(image=image, form=FilterForm({"sort": sort}))
            assert previous is not None and following is not None
    assert len(executed) >= 8
    for sql, params in executed:
        plan = plan_of(sql, params)
        assert "TEMP B-TREE FOR ORDER BY" not in plan, (sql, plan)


def test_a_common_tag_is_looked_up_once_while_the_grid_walks_its_index(big_library, monkeypatch):
    from gallery import planner

    sea = Tag.objects.create(name="sea")
    Metadata.tags.through.objects.bulk_create(
        Metadata.tags.through(metadata_id=image.pk, tag_id=sea.pk) for image in big_library[:2500]
    )
    refresh_statistics()

    def grid_plan() -> dict:
        with CaptureQueriesContext(connection) as built:
            query = image_list(form=FilterForm({"tag": "sea"}), page=True).values("pk")[:61].query
        tag_lookups = [q["sql"] for q in built.captured_queries if '"gallery_tag"' in q["sql"]]
        assert len(tag_lookups) == 1, tag_lookups  # the name is read once, then the tag is named by its id
        sql, params = query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = {row[0]: (row[1], row[-1]) for row in cursor.fetchall()}
        assert any("image_live_newest" in detail for _, detail in plan.values()), plan
        assert not any("TEMP B-TREE" in detail for _, detail in plan.values()), plan
        return plan

    # Its 2,500 photos listed: checked in a temporary index of the list, made once.
    plan = grid_plan()
    assert any(detail.startswith("LIST SUBQUERY") for _, detail in plan.values()), plan
    assert not any(detail.startswith("CORRELATED") for _, detail in plan.values()), plan
    assert len(list(image_list(form=FilterForm({"tag": "sea"}), page=True)[:61])) == 61
    monkeypatch.setattr(planner, "LISTED_UP_TO", 2000)  # beyond the list's limit
    plan = grid_plan()
    # Each photo walked is one probe of the membership index, and no other search.
    correlated = [node for node, (_, detail) in plan.items() if detail.startswith("CORRELATED")]
    per_photo = [
        detail for parent, detail in plan.values() if parent in correlated and detail.startswith(("SEARCH", "SCAN"))
    ]
    assert len(per_photo) == 1 and "(metadata_id=? AND tag_id=?)" in per_photo[0], plan
    assert len(list(image_list(form=FilterForm({"tag": "sea"}), page=True)[:61])) == 61


def test_the_trash_page_counts_and_sizes_its_photos_from_an_index(big_library):
    from gallery.selectors import trash_summary

    with CaptureQueriesContext(connection) as ran:
        assert trash_summary()["count"] == 30
    (sql,) = [q["sql"] for q in ran.captured_queries]
    plan = plan_of(sql)
    assert "COVERING INDEX" in plan and not plan.startswith("SCAN"), plan  # a million photos scanned: 175 ms


@pytest.fixture
def latest_schema_after():
    """A test that migrates back leaves the schema as every later test expects it: fully migrated."""
    yield
    call_command("migrate", "gallery", verbosity=0)


@pytest.mark.parametrize(
    "before, migration, index", [("0012", "0013", "image_trashed_size"), ("0013", "0014", "image_searchable")]
)
def test_a_migration_that_adds_an_index_gives_the_planner_its_statistics(
    before, migration, index, big_library, latest_schema_after
):
    call_command("migrate", "gallery", before, verbosity=0)  # a library as it was before the index
    refresh_statistics()
    call_command("migrate", "gallery", migration, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM sqlite_stat1 WHERE idx = %s", [index])
        assert cursor.fetchall()
    # Without its row the planner took a new index on trashed_at for the grid and sorted the library
    # (100+ ms at 100k).
    first_page = image_list(form=FilterForm({}))[:60].explain()
    assert "image_live_newest" in first_page and "TEMP B-TREE" not in first_page, first_page


def test_the_searchable_photos_ids_are_read_from_an_index_in_id_order(big_library):
    """The duplicate scan, the column cache and reconcile read every searchable id: a scan of every
    photo's row took 1.5 s at a million with the database out of the page cache (0.5 s from this index)."""
    from search.embeddings import model_name
    from search.sync import indexable

    Image.objects.filter(pk__in=[image.pk for image in big_library[100:2900]]).update(embedding_model=model_name())
    Image.objects.filter(pk=big_library[200].pk).update(missing_since=timezone.now())
    Image.objects.filter(pk=big_library[300].pk).update(embedding_state=Image.Embedding.FAILED)
    refresh_statistics()
    ids = indexable().order_by("pk").values_list("pk", flat=True)
    expected = sorted(
        image.pk for image in big_library[100:2900] if image.pk not in {big_library[200].pk, big_library[300].pk}
    )
    assert list(ids) == expected  # photos 0-29 trashed, 200 missing, 300 failed; others by another model
    plan = ids.explain()
    assert "COVERING INDEX image_searchable" in plan and "TEMP B-TREE" not in plan, plan
    with CaptureQueriesContext(connection) as ran:
        assert indexable().count() == len(expected)  # asked by search's and the worker's index checks
    plan = plan_of(ran.captured_queries[0]["sql"])
    assert "COVERING INDEX image_searchable" in plan, plan


def test_the_review_queue_is_read_from_its_pairs_not_by_walking_every_photo(big_library):
    from search.duplicates.groups import _waiting
    from search.models import DuplicatePair

    # The statistics were taken while the queue was empty (big_library's), as after an ingest.
    DuplicatePair.objects.create(image_a=big_library[40], image_b=big_library[41], tier="exact", similarity=1.0)
    DuplicatePair.objects.create(image_a=big_library[0], image_b=big_library[42], tier="exact", similarity=1.0)
    with CaptureQueriesContext(connection) as ran:
        relation = _waiting()[0]
    assert list(relation) == [(big_library[40].pk, big_library[41].pk)]  # big_library[0] is in the trash
    (sql,) = [q["sql"] for q in ran.captured_queries if '"search_duplicatepair"' in q["sql"]]
    plan = plan_of(sql)
    # As a join SQLite walked every live photo to find its pairs: 103 ms at a million, for none.
    assert plan.startswith("SCAN search_duplicatepair"), plan


def test_a_scan_of_new_photos_reads_their_hashes_by_id_and_hash_not_by_walking_every_photo(big_library):
    from search.duplicates.scan import _facts

    new = big_library[-10:]  # bulk_create gave the last the highest ids
    Image.objects.update(pixel_hash=F("sha256"))  # each photo's own pixels, as in a real library
    refresh_statistics()
    Image.objects.filter(pk__in=[new[0].pk, big_library[100].pk, big_library[5].pk]).update(pixel_hash="aa")
    found = [(big_library[200].pk, new[1].pk, 0.95)]
    with CaptureQueriesContext(connection) as ran:
        facts = _facts(found, since_id=big_library[-11].pk)
    # The new photos, an older one sharing a new one's pixels, one in a pair; not the trashed big_library[5].
    assert set(facts) == {image.pk for image in new} | {big_library[100].pk, big_library[200].pk}
    for query in ran.captured_queries:
        plan = plan_of(query["sql"])
        # Asked for live photos, or in the default order, SQLite walked an index of every photo (0.9 s
        # at a million): the live one (trashed_at=?) or the newest-first one.
        assert plan.startswith(
            ("SEARCH gallery_image USING INTEGER PRIMARY KEY", "SEARCH gallery_image USING INDEX image_pixel_hash")
        ), plan


def test_ingest_gives_the_planner_its_statistics(tmp_path):
    write_library(tmp_path / "in", 3, size=(32, 24))
    call_command("ingest", str(tmp_path / "in"), "--no-progress")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'gallery_image'")
        assert cursor.fetchone()[0] > 0
