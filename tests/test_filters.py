from datetime import UTC, datetime

import numpy as np
import pytest

from gallery.filters import InvalidFilter, to_chroma, to_q, validate
from gallery.models import Image, Metadata, Tag
from gallery.services import album_add, album_create
from search.embeddings import get_embedder, model_name
from search.index import get_index
from search.query import nearest
from tests.photos import write_library


@pytest.mark.parametrize(
    "bad, words",
    [
        ("category", "non-empty object"),
        ({}, "non-empty object"),
        ({"colour": "red"}, "unknown filter field 'colour'"),
        ({"category": {"$like": "x"}}, "operator '$like'"),
        ({"category": {"$gt": "a"}}, "compares numbers"),
        ({"width": "wide"}, "needs a number value"),
        ({"width": {"$in": []}}, "non-empty list"),
        ({"has_gps": "yes"}, "needs a true/false value"),
        ({"$and": {"category": "x"}}, "non-empty list"),
        ({"$xor": [{"category": "x"}]}, "unknown operator '$xor'"),
        ({"category": {"$eq": "a", "$ne": "b"}}, "exactly one operator"),
    ],
)
def test_bad_filters_are_refused_with_a_clear_message(bad, words):
    with pytest.raises(InvalidFilter) as error:
        validate(bad)
    assert words in str(error.value)


def test_free_form_filters_accept_any_key_but_still_check_operators():
    assert validate({"location": "Swiss Alps", "rating": {"$gte": 4}}, free_form=True)
    with pytest.raises(InvalidFilter):
        validate({"location": {"$gt": "A"}}, free_form=True)


@pytest.fixture
def varied_library(tmp_path, ingest, django_capture_on_commit_callbacks):
    write_library(tmp_path / "in", 40, size=(96, 72))
    with django_capture_on_commit_callbacks(execute=True):
        ingest(tmp_path / "in")
    tags = [Tag.objects.create(name=name) for name in ("sea", "snow", "city")]
    with django_capture_on_commit_callbacks(execute=True):
        for i, meta in enumerate(Metadata.objects.order_by("image_id")):
            meta.category = ["landscape", "portrait", "street", ""][i % 4]
            meta.camera_make = ["Canon", "Nikon", ""][i % 3]
            meta.camera_model = {"Canon": "EOS R5", "Nikon": "Z6", "": ""}[meta.camera_make]
            meta.taken_at = datetime(2015 + i % 6, 1 + i % 12, 1, tzinfo=UTC) if i % 5 else None
            if i % 2:
                meta.latitude, meta.longitude = 46.5, 7.9
            meta.save()
            meta.tags.set(tags[: i % 4])
        ids = list(Image.objects.order_by("pk").values_list("pk", flat=True))
        album_add(album=album_create(name="Holidays 2024"), images=Image.objects.filter(pk__in=ids[::3]))
        album_add(album=album_create(name="Work"), images=Image.objects.filter(pk__in=ids[1::4]))
        Image.objects.filter(pk__in=list(Image.objects.values_list("pk", flat=True)[:10])).update(width=200)
        for image in Image.objects.all():  # QuerySet.update sends no signal: mark them as the docs say
            image.save()
    return Image.objects.count()


FILTERS = [
    {"category": "landscape"},
    {"category": {"$ne": "landscape"}},
    {"camera_make": {"$in": ["Canon", "Nikon"]}},
    {"year": 2017},
    {"year": {"$gte": 2018}},
    {"has_gps": True},
    {"tags": "snow"},
    {"tags": {"$in": ["city", "sea"]}},
    {"width": {"$gt": 100}},
    {"$and": [{"category": "portrait"}, {"has_gps": True}]},
    {"$or": [{"category": "street"}, {"tags": "city"}]},
    {"album": "holidays 2024"},
    {"album": {"$in": ["Work", "Holidays 2024"]}},
    {"$and": [{"album": "Work"}, {"tags": "sea"}]},
    {"filename": "PHOTO_0003.JPG"},  # file names are hashed in the column cache, any case
    {"filename": {"$in": ["photo_0005.jpg", "Photo_0007.jpg"]}},
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", FILTERS)
def test_sqlite_filter_paths_agree_with_chromas_own_where(varied_library, where, settings):
    vector = get_embedder().encode_texts(["mountain landscape"])[0]
    chroma_where = to_chroma(validate(where))
    if "$ne" in str(where):
        # Chroma's $ne skips records without the key; ours counts an empty category as "not landscape".
        chroma_where = {"$or": [chroma_where, {"category": {"$nin": ["landscape"]}}]}
    expected = [int(pk) for pk, _ in get_index().query(model_name(), vector, varied_library, where=chroma_where)]
    exact = [hit.image_id for hit in nearest(vector, top_k=varied_library, where=where)]
    settings.IMGSIM_EXACT_SEARCH_LIMIT = 0  # force the over-fetch path
    overfetch = [hit.image_id for hit in nearest(vector, top_k=5, where=where)]
    if "$ne" in str(where):
        assert set(exact) >= set(expected)
        return
    assert set(exact) == set(expected) and len(expected) > 0
    assert exact[:5] == expected[:5]
    assert overfetch == expected[:5]


@pytest.mark.django_db(transaction=True)
def test_threshold_and_top_k(varied_library):
    vector = get_embedder().encode_texts(["snow"])[0]
    everything = nearest(vector, top_k=100)
    assert len(everything) == varied_library
    similarities = [hit.similarity for hit in everything]
    assert similarities == sorted(similarities, reverse=True)
    cut = similarities[10]
    assert all(hit.similarity >= cut for hit in nearest(vector, top_k=100, threshold=cut))
    assert len(nearest(vector, top_k=3)) == 3
    assert np.isclose(nearest(vector, top_k=1)[0].similarity, similarities[0], atol=1e-5)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", [None, {"category": {"$ne": "landscape"}}])
def test_the_ann_path_keeps_the_exact_best_of_its_candidates(varied_library, where, settings, monkeypatch):
    vector = get_embedder().encode_texts(["a red car"])[0]
    exact = nearest(vector, top_k=5, where=where)  # a small library: every vector scored
    settings.IMGSIM_EXACT_SEARCH_LIMIT = 0  # as a large library is searched
    settings.IMGSIM_ANN_CANDIDATES = varied_library
    index, asked = get_index(), []
    real_query = index.query

    def approximate(model, query_vector, count, **options):  # HNSW: the right candidates, not their order
        asked.append(count)
        return [(pk, 0.0) for pk, _ in reversed(real_query(model, query_vector, count, **options))]

    monkeypatch.setattr(index, "query", approximate)
    found = nearest(vector, top_k=5, where=where)
    assert asked and asked[0] >= (varied_library if where is None else 5)
    assert [hit.image_id for hit in found] == [hit.image_id for hit in exact]
    assert np.allclose([hit.similarity for hit in found], [hit.similarity for hit in exact], atol=1e-5)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", FILTERS)
def test_the_per_photo_form_of_a_filter_selects_the_same_photos(varied_library, where):
    listed = set(Image.objects.filter(to_q(validate(where))).values_list("pk", flat=True))
    per_photo = set(Image.objects.filter(to_q(validate(where), few=True)).values_list("pk", flat=True))
    assert per_photo == listed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", FILTERS)
def test_a_condition_that_holds_for_many_walks_the_grid_and_selects_the_same_photos(varied_library, where):
    from gallery import planner

    def grid(**options):
        q = to_q(validate(where), **options)
        return list(Image.objects.live().filter(q).order_by("-added_at", "-id").values_list("pk", flat=True))

    listed = grid()
    planner.MANY, many = 1, planner.MANY  # every condition holds for many, as in a large library
    try:
        for listed_up_to in (0, 10**6):  # PostgreSQL: probed in the condition's index, or listed and hashed
            planner.LISTED_UP_TO, up_to = listed_up_to, planner.LISTED_UP_TO
            try:
                assert grid(page=True) == listed and grid(page=True, by_taken=True) == listed, listed_up_to
            finally:
                planner.LISTED_UP_TO = up_to
    finally:
        planner.MANY = many


@pytest.mark.django_db(transaction=True)
def test_holds_for_many_counts_a_tags_photos_from_its_index_alone(varied_library, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from gallery import planner
    from gallery.filters import _tag_subquery

    snow = _tag_subquery("snow")
    held = snow.count()  # photos i % 4 in (2, 3): half the library
    assert held == varied_library // 2
    for many, expected in ((1, True), (held, True), (held + 1, False)):
        monkeypatch.setattr(planner, "MANY", many)
        with CaptureQueriesContext(connection) as asked:
            assert planner.holds_for_many(snow) is expected, many
    if connection.vendor == "sqlite":  # the tag's own index answers: no photo read from the table
        ((query,),) = [[q["sql"]] for q in asked.captured_queries]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + query)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        assert "COVERING INDEX" in plan, plan


@pytest.mark.django_db(transaction=True)
def test_a_page_of_a_common_tag_or_year_walks_the_grids_index_instead_of_sorting(varied_library, monkeypatch):
    from django.db import connection
    from django.http import QueryDict

    from gallery import planner
    from gallery.filters import FilterForm
    from gallery.selectors import image_list

    def page(query: str, many: int):
        """The first page's query, with a condition on `many` photos or more counting as common."""
        monkeypatch.setattr(planner, "MANY", many)
        return image_list(form=FilterForm(QueryDict(query)), page=True)[:60]

    planner.refresh_statistics()
    sqlite = connection.vendor == "sqlite"  # PostgreSQL plans by its own histograms; the plus is SQLite's hint
    monkeypatch.setattr(planner, "LISTED_UP_TO", 0)  # PostgreSQL's list of a tag's photos: the test after this one
    for query, walked in {"tag=snow": "EXISTS", "year=2017": '+"gallery_metadata"."taken_at"'}.items():
        if not sqlite and query != "tag=snow":
            continue
        assert walked in str(page(query, many=1).query), query
        assert not sqlite or "TEMP B-TREE" not in page(query, many=1).explain(), query  # along the grid's order
        assert walked not in str(page(query, many=10**9).query), query  # few: looked up by their index
    # Sorted by date taken, a tag is checked on the side of the date's index, before the photo's row is read.
    assert 'U0."metadata_id" = ("gallery_metadata"."image_id")' in str(page("tag=snow&sort=taken", many=1).query)
    # Counting, or selecting every photo of a filter, looks its photos up whatever their number.
    monkeypatch.setattr(planner, "MANY", 1)
    assert "EXISTS" not in str(image_list(form=FilterForm(QueryDict("tag=snow"))).query)
    if sqlite:  # sorted by date taken, the date's own index is the order, and a year a range of it
        assert '+"gallery_metadata"' not in str(page("sort=taken&year=2017", many=1).query)
        assert "TEMP B-TREE FOR ORDER BY" not in page("sort=taken&year=2017", many=1).explain()
        assert "TEMP B-TREE FOR ORDER BY" not in page("sort=taken", many=1).explain()


@pytest.mark.django_db(transaction=True)
def test_a_common_tags_photos_are_listed_into_the_grids_query_up_to_a_limit(varied_library, monkeypatch):
    from django.db import connection
    from django.http import QueryDict

    from gallery import planner
    from gallery.filters import FilterForm, _tag_subquery
    from gallery.selectors import image_list

    snow = _tag_subquery("snow")
    ids = sorted(snow.values_list("image_id", flat=True))
    monkeypatch.setattr(planner, "MANY", 1)
    assert sorted(int(pk) for pk in planner.listed(snow).split(",")) == ids
    monkeypatch.setattr(planner, "LISTED_UP_TO", len(ids) - 1)
    assert planner.listed(snow) is None  # beyond the limit: probed photo by photo
    monkeypatch.setattr(planner, "LISTED_UP_TO", len(ids))
    planner.refresh_statistics()
    sqlite = connection.vendor == "sqlite"
    for query in ("tag=snow", "tag=snow&sort=taken", "tag=snow,city"):
        page = image_list(form=FilterForm(QueryDict(query)), page=True)
        sql = str(page.query)
        # Sorted by date taken, the list is on the side of the date's index, which the grid walks.
        column = '"gallery_metadata"."image_id"' if "taken" in query else '"gallery_image"."id"'
        assert (f"+{column} IN (SELECT value FROM json_each(" if sqlite else f"{column} = ANY(") in sql, sql
        assert "EXISTS" not in sql, sql
        assert not sqlite or "TEMP B-TREE FOR ORDER BY" not in page[:60].explain(), query  # the grid's order
        everything = image_list(form=FilterForm(QueryDict(query)))  # a count or select-all: not listed
        assert list(page.values_list("pk", flat=True)) == list(everything.values_list("pk", flat=True)), query


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rough_pass", ["int8", "int4"])
@pytest.mark.parametrize("where", [None, {"category": {"$ne": "landscape"}}, {"tags": "snow"}])
def test_a_quantised_pass_gives_the_same_results_as_the_float16_pass(varied_library, where, rough_pass, settings):
    vector = get_embedder().encode_texts(["a red car"])[0]
    float16 = nearest(vector, top_k=5, where=where)
    settings.IMGSIM_SEARCH_PASS = rough_pass
    quantised = nearest(vector, top_k=5, where=where)
    assert [hit.image_id for hit in quantised] == [hit.image_id for hit in float16] and float16
    assert np.allclose([hit.similarity for hit in quantised], [hit.similarity for hit in float16], atol=1e-6)
