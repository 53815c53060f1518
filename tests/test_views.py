"""Every page and HTMX partial through Django's test client: full page vs HX-Request."""

import re
from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from gallery.models import Image, Metadata, Tag
from gallery.services import image_trash
from search.python_api import find_similar
from tests.photos import photo_bytes, write_library

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def library(tmp_path, ingest):
    write_library(tmp_path / "in", 70, size=(64, 48))
    ingest(tmp_path / "in", batch_size=35)
    sea = Tag.objects.create(name="sea")
    for i, meta in enumerate(Metadata.objects.order_by("image_id")):
        meta.category = "travel" if i % 2 else "family"
        meta.camera_make, meta.camera_model = ("Canon", "EOS R5") if i % 3 == 0 else ("", "")
        meta.taken_at = datetime(2019 + i % 3, 5, 1, tzinfo=UTC)
        meta.title = f"Photo number {i}"
        meta.save()
        if i % 5 == 0:
            meta.tags.add(sea)
    return list(Image.objects.order_by("pk"))


def test_gallery_pages_through_60_at_a_time(viewer_client, library):
    page = viewer_client.get(reverse("gallery:index"))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="card-photo"') == 60
    assert 'hx-trigger="revealed"' in html and "page=2" in html
    assert "<html" in html  # a full page
    more = viewer_client.get(reverse("gallery:index"), {"page": 2}, HTTP_HX_TARGET="grid-more", **HTMX)
    fragment = more.content.decode()
    assert "<html" not in fragment and fragment.count('class="card-photo"') == 10
    assert 'hx-trigger="revealed"' not in fragment
    fallback = viewer_client.get(reverse("gallery:index"), {"page": 2})  # plain link, no JS
    assert "<html" in fallback.content.decode() and fallback.content.decode().count('class="card-photo"') == 10


def test_gallery_filters_and_chips(viewer_client, library):
    response = viewer_client.get(reverse("gallery:index"), {"category": "travel", "year": 2019, "camera": "Canon"})
    html = response.content.decode()
    expected = Image.objects.filter(
        metadata__category="travel", metadata__taken_at__year=2019, metadata__camera_make="Canon"
    ).count()
    assert expected > 0 and html.count('class="card-photo"') == expected
    assert "Remove filter category: travel" in html and "Remove filter Year taken: 2019" in html
    tagged = viewer_client.get(reverse("gallery:index"), {"tag": "sea, nothing"}).content.decode()
    assert tagged.count('class="card-photo"') == Image.objects.filter(metadata__tags__name="sea").count()
    partial = viewer_client.get(
        reverse("gallery:index"), {"category": "family"}, HTTP_HX_TARGET="gallery-results", **HTMX
    )
    assert "<html" not in partial.content.decode() and 'id="gallery-results"' in partial.content.decode()
    by_taken = viewer_client.get(reverse("gallery:index"), {"sort": "taken"})
    assert by_taken.status_code == 200
    bad = viewer_client.get(reverse("gallery:index"), {"year": "soon"})
    html = bad.content.decode()  # an invalid filter is said to be so, not ignored (all photos) nor a crash
    assert bad.status_code == 400 and "These filters cannot be used: Year taken: Enter a whole number." in html
    assert 'class="card-photo"' not in html
    long_album = viewer_client.get(reverse("gallery:index"), {"album": "x" * 300}).content.decode()
    assert "Album: Ensure this value has at most 120 characters (it has 300)." in long_album
    assert 'class="card-photo"' not in long_album


def test_empty_library_says_how_to_add_photos(editor_client):
    html = editor_client.get(reverse("gallery:index")).content.decode()
    assert "Your library is empty" in html and "manage.py ingest" in html and reverse("gallery:upload") in html


def test_detail_page_shows_facts_and_neighbours_within_the_filter(viewer_client, library):
    image = library[10]
    response = viewer_client.get(reverse("gallery:detail", args=[image.pk]), {"category": image.metadata.category})
    html = response.content.decode()
    assert response.status_code == 200
    assert image.original_name in html and "Photo number 10" in html and f"{image.width} × {image.height}" in html
    assert reverse("search:similar", args=[image.pk]) in html
    assert 'rel="prev"' in html and 'rel="next"' in html
    assert "Edit in admin" not in html  # viewers cannot edit
    assert viewer_client.get(reverse("gallery:detail", args=[999999])).status_code == 404


@pytest.mark.parametrize("params", [{}, {"sort": "taken"}, {"sort": "taken", "category": "travel"}, {"tag": "sea"}])
def test_neighbours_follow_the_grid_order_with_ties_and_unknown_dates(library, params):
    from gallery.filters import FilterForm
    from gallery.selectors import image_list, neighbours

    Image.objects.filter(pk__in=[p.pk for p in library[:20]]).update(added_at=library[0].added_at)  # ties
    Metadata.objects.filter(image__in=library[30:40]).update(taken_at=None)  # unknown dates come last
    form = FilterForm(params)
    grid = list(image_list(form=form).values_list("pk", flat=True))
    assert len(grid) > 10
    for position, pk in enumerate(grid):
        image = Image.objects.select_related("metadata").get(pk=pk)
        expected = (grid[position - 1] if position else None, grid[position + 1] if position + 1 < len(grid) else None)
        assert neighbours(image=image, form=FilterForm(params)) == expected, position


@pytest.mark.parametrize("params", [{}, {"sort": "taken"}, {"category": "travel", "sort": "taken"}])
def test_the_infinite_scroll_follows_the_last_photo_through_the_whole_grid(viewer_client, library, params):
    import re

    from gallery.filters import FilterForm
    from gallery.selectors import PAGE_SIZE, image_list

    Image.objects.filter(pk__in=[p.pk for p in library[:30]]).update(added_at=library[0].added_at)  # ties
    Metadata.objects.filter(image__in=library[20:40]).update(taken_at=None)  # unknown dates come last
    # A smaller page so a 70-photo library takes several: the same code as 60 at a time.
    import gallery.selectors

    gallery.selectors.PAGE_SIZE = 12
    try:
        expected = list(image_list(form=FilterForm(params)).values_list("pk", flat=True))
        shown, url, pages = [], reverse("gallery:index") + "?" + "&".join(f"{k}={v}" for k, v in params.items()), 0
        while url:
            html = viewer_client.get(url, HTTP_HX_TARGET="grid-more", **HTMX).content.decode()
            shown += [int(pk) for pk in re.findall(r'href="/images/(\d+)/', html)]
            more = re.search(r'id="grid-more" hx-get="([^"]+)"', html)
            url = more.group(1).replace("&amp;", "&") if more else None
            pages += 1
            assert not url or "after=" in url
        assert shown == expected and pages == -(-len(expected) // 12)
    finally:
        gallery.selectors.PAGE_SIZE = PAGE_SIZE
    gone = viewer_client.get(reverse("gallery:index"), {"after": "999999"})
    assert gone.status_code == 400 and "no longer in the library" in gone.content.decode()
    assert viewer_client.get(reverse("gallery:index"), {"after": "9" * 40}).status_code == 400
    both = viewer_client.get(reverse("gallery:index"), {"after": "zz", "min_width": "abc"})
    assert both.status_code == 400  # two mistakes: the page names both, not only the first
    html = both.content.decode()
    assert "is not a photo&#x27;s number" in html and "These filters cannot be used" in html


def test_similar_strip_is_a_partial_for_htmx_and_a_page_otherwise(viewer_client, library):
    image = library[0]
    partial = viewer_client.get(reverse("search:similar", args=[image.pk]), **HTMX).content.decode()
    assert "<html" not in partial and partial.count('class="card-photo"') == 12
    expected = [r["id"] for r in find_similar(query_image_id=image.pk, top_k=12)]
    for pk in expected:
        assert reverse("gallery:detail", args=[pk]) in partial
    full = viewer_client.get(reverse("search:similar", args=[image.pk])).content.decode()
    assert "<html" in full and full.count('class="card-photo"') == 12


def result_ids(html: str) -> list[int]:
    import re

    return [int(pk) for pk in re.findall(r'<li class="card-photo" id="card-(\d+)"', html)]


def test_search_page_matches_the_python_api(viewer_client, library):
    response = viewer_client.get(reverse("search:page"), {"q": "red car at night", "top_k": 10})
    assert response.status_code == 200
    expected = [r["id"] for r in find_similar(query_text="red car at night", top_k=10)]
    assert result_ids(response.content.decode()) == expected
    filtered = viewer_client.get(reverse("search:page"), {"q": "beach", "category": "travel", "top_k": 5}, **HTMX)
    html = filtered.content.decode()
    assert "<html" not in html
    expected = [r["id"] for r in find_similar(query_text="beach", top_k=5, filter_metadata={"category": "travel"})]
    assert result_ids(html) == expected


def test_the_minimum_similarity_the_page_shows_is_the_one_applied(viewer_client, library, settings):
    everything = find_similar(query_text="red car at night", top_k=10, threshold=-1)
    settings.IMGSIM_SEARCH_THRESHOLD = everything[4]["similarity"]  # the setting: five photos reach it
    html = viewer_client.get(reverse("search:page"), {"q": "red car at night", "top_k": 10}).content.decode()
    shown = re.search(r'id="id_threshold"[^>]*value="([^"]+)"', html).group(1)
    assert float(shown) == pytest.approx(everything[4]["similarity"], abs=1e-6)  # the slider shows it
    assert result_ids(html) == [r["id"] for r in everything[:5]]  # and it applies
    html = viewer_client.get(reverse("search:page"), {"q": "red car at night", "top_k": 10, "threshold": -1})
    assert result_ids(html.content.decode()) == [r["id"] for r in everything]  # the URL's own wins


def test_search_takes_every_gallery_filter(viewer_client, library):
    params = {
        "q": "beach",
        "top_k": 50,
        "taken_from": "2020-01-01",
        "taken_to": "2020-12-31",
        "min_width": 10,
        "tag": "sea",
        "format": "JPEG",
        "has_gps": "false",
    }
    html = viewer_client.get(reverse("search:page"), params).content.decode()
    expected = Image.objects.filter(metadata__taken_at__year=2020, metadata__tags__name="sea").count()
    assert expected > 0 and len(result_ids(html)) == expected
    for name in ("taken_from", "taken_to", "min_width", "tag", "format", "has_gps"):
        assert f'name="{name}"' in html


def test_search_negative_terms_show_as_a_chip(viewer_client, library):
    html = viewer_client.get(reverse("search:page"), {"q": "beach -people"}).content.decode()
    assert "not: people" in html
    expected = [r["id"] for r in find_similar(query_text="beach", exclude_text="people", top_k=24)]
    assert result_ids(html) == expected


def test_more_like_this_and_image_upload_queries(viewer_client, library):
    image = library[5]
    html = viewer_client.get(reverse("search:page"), {"like": image.pk, "top_k": 5}).content.decode()
    assert "More like" in html and image.pk not in result_ids(html)[1:]
    assert 'href="?top_k=5" aria-label="Remove the photo from the query"' in html
    count = Image.objects.count()
    upload = SimpleUploadedFile("query.jpg", photo_bytes(7, size=(64, 48)), content_type="image/jpeg")
    response = viewer_client.post(reverse("search:page"), {"image": upload, "top_k": 3}, **HTMX)
    ids = result_ids(response.content.decode())
    assert response.status_code == 200 and ids[0] == Image.objects.get(original_name="photo_0007.jpg").pk
    assert Image.objects.count() == count  # the query image is not stored


def test_search_states(viewer_client, library, settings):
    empty = viewer_client.get(reverse("search:page")).content.decode()
    assert "Type what you are looking for" in empty
    none = viewer_client.get(reverse("search:page"), {"q": "x", "threshold": 1}).content.decode()
    assert "No photo reaches the minimum similarity of 1. Lower it" in none
    bad = viewer_client.get(reverse("search:page"), {"q": "x", "top_k": 100000, "year": 99999})
    assert bad.status_code == 400
    message = bad.content.decode()
    assert "Results: Ensure this value is less than or equal to 200." in message and "Year taken:" in message
    assert "top_k" not in message.split('id="results"', 1)[1]
    long_category = viewer_client.get(reverse("search:page"), {"q": "x", "category": "x" * 3000})
    message = long_category.content.decode()  # a field without a label of its own is named in words
    assert long_category.status_code == 400 and "Category: Ensure this value has at most 64" in message
    assert "None:" not in message
    not_image = SimpleUploadedFile("q.jpg", b"hello", content_type="image/jpeg")
    assert viewer_client.post(reverse("search:page"), {"image": not_image}).status_code == 415
    settings.IMGSIM_UPLOAD_MAX_BYTES = 100
    big = SimpleUploadedFile("q.jpg", photo_bytes(1, size=(64, 48)), content_type="image/jpeg")
    too_big = viewer_client.post(reverse("search:page"), {"image": big})
    assert too_big.status_code == 413 and "larger than" in too_big.content.decode()
    Image.objects.filter(pk=library[0].pk).update(embedding_state="pending")
    assert (
        "1 photo still waits for embeddings" in viewer_client.get(reverse("search:page"), {"q": "x"}).content.decode()
    )
    from search.embeddings import get_embedder

    settings.IMGSIM_EMBEDDER = {
        **settings.IMGSIM_EMBEDDER,
        "OPTIONS": {**settings.IMGSIM_EMBEDDER["OPTIONS"], "model": "/nonexistent/model"},
    }
    get_embedder.cache_clear()
    missing = viewer_client.get(reverse("search:page"), {"q": "x"})
    html = missing.content.decode()
    assert missing.status_code == 503 and "IMGSIM_MODEL" in html
    assert html.count('role="alert"') == 1 and html.index("Search is unavailable") < html.index('id="search-form"')
    assert "Nothing to search yet" not in html  # nothing ran: no claim about the results


def test_a_search_that_finds_nothing_says_what_to_change(viewer_client, library):
    def nothing_found(**params) -> str:
        html = viewer_client.get(reverse("search:page"), {"q": "zqxj", **params}, **HTMX).content.decode()
        assert result_ids(html) == []
        return html

    # Words no caption holds ("zqxj") still rank every photo by CLIP: a search finds nothing only
    # when a filter matches no photo, no photo reaches the minimum similarity, or nothing is embedded.
    assert "No photo matches these filters. Remove one" in nothing_found(year=1900, threshold=-1)
    assert "minimum similarity of 0.999. Lower it" in nothing_found(threshold=0.999)
    assert "No photo matches these filters" not in nothing_found(category="travel", threshold=0.999)
    Image.objects.filter(metadata__category="travel").update(embedding_state="pending")
    assert "matching these filters can be searched yet" in nothing_found(category="travel", threshold=-1)
    Image.objects.update(embedding_state="pending")
    assert "Nothing to search yet: add photos on the Upload page" in nothing_found(threshold=-1)


def test_upload_adds_photos_and_reports_each_file(editor_client, editor):
    files = [
        SimpleUploadedFile("one.jpg", photo_bytes(1, size=(64, 48)), content_type="image/jpeg"),
        SimpleUploadedFile("two.png", photo_bytes(2, size=(64, 48), fmt="PNG"), content_type="image/png"),
        SimpleUploadedFile("fake.jpg", b"<html>no</html>", content_type="image/jpeg"),
    ]
    response = editor_client.post(reverse("gallery:upload"), {"files": files}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.count("added") >= 2 and "refused" in html and "HTML" in html
    assert Image.objects.count() == 2 and Image.objects.filter(added_by=editor).count() == 2
    again = editor_client.post(
        reverse("gallery:upload"),
        {"files": [SimpleUploadedFile("one-again.jpg", photo_bytes(1, size=(64, 48)), content_type="image/jpeg")]},
    )
    known = Image.objects.get(original_name="one.jpg")
    html = again.content.decode()
    assert "<html" in html and "already in the library" in html
    assert f'href="{reverse("gallery:detail", args=[known.pk])}"' in html.split("one-again.jpg", 1)[1]
    # In the trash, the photo cannot be found where "already in the library" sends one looking for it.
    image_trash(images=[known])
    again = editor_client.post(
        reverse("gallery:upload"),
        {"files": [SimpleUploadedFile("one-again.jpg", photo_bytes(1, size=(64, 48)), content_type="image/jpeg")]},
        **HTMX,
    )
    html = again.content.decode()
    assert "in the trash" in html and f'href="{reverse("gallery:trash")}"' in html
    assert f'href="{reverse("gallery:detail", args=[known.pk])}"' not in html
    assert Image.objects.count() == 2  # not stored twice


def test_large_uploads_are_read_from_their_temporary_file(editor_client, settings):
    from tests.photos import photo_bytes

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000  # every upload spools to a temporary file
    files = [
        SimpleUploadedFile(f"big{i}.jpg", photo_bytes(i, size=(200, 150)), content_type="image/jpeg") for i in range(3)
    ]
    response = editor_client.post(reverse("gallery:upload"), {"files": files}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content.decode().count('class="outcome added"') == 3
    image = Image.objects.get(original_name="big1.jpg")
    assert image.source_path == "" and not image.in_place  # stored, not a reference to the temp file
    from gallery import storage

    assert storage.original_path(image).read_bytes() == photo_bytes(1, size=(200, 150))


def test_upload_limits_and_permissions(editor_client, viewer, client, settings):
    settings.IMGSIM_UPLOAD_MAX_BYTES = 1000
    big = SimpleUploadedFile("big.jpg", photo_bytes(1), content_type="image/jpeg")
    response = editor_client.post(reverse("gallery:upload"), {"files": [big]})
    assert response.status_code == 413 and "larger than" in response.content.decode()
    assert editor_client.post(reverse("gallery:upload"), {}).status_code == 400
    settings.IMGSIM_UPLOAD_MAX_BYTES = 10**7
    not_image = SimpleUploadedFile("x.jpg", b"text", content_type="image/jpeg")
    assert editor_client.post(reverse("gallery:upload"), {"files": [not_image]}).status_code == 415
    client.force_login(viewer)
    assert client.post(reverse("gallery:upload"), {"files": [not_image]}).status_code == 403
    assert Image.objects.count() == 0


def test_gallery_grid_is_cached_until_the_library_changes(
    viewer_client, tmp_path, ingest, django_assert_max_num_queries
):
    write_library(tmp_path / "cached", 3)
    ingest(tmp_path / "cached")
    assert viewer_client.get("/").status_code == 200  # renders and caches the grid
    # session, user, perms, version, empty-check, and the not-searchable banner's two indexed counts; no photo query
    with django_assert_max_num_queries(9):
        html = viewer_client.get("/").content.decode()
    assert html.count('class="card-photo"') == 3
    image = Image.objects.order_by("pk").first()
    image.metadata.title = "Renamed just now"
    image.metadata.save()
    assert "Renamed just now" in viewer_client.get("/").content.decode()  # the change is seen at once
    image.trashed_at = image.added_at
    image.save()
    assert viewer_client.get("/").content.decode().count('class="card-photo"') == 2


def test_gallery_freshness_does_not_depend_on_the_search_index(
    viewer_client, monkeypatch, django_capture_on_commit_callbacks
):
    from search import sync
    from search.errors import IndexUnavailable
    from tests.factories import make_photo

    photo = make_photo(category="old")
    assert (
        "<small>0 photos</small>" in viewer_client.get(reverse("gallery:index"), {"category": "new"}).content.decode()
    )

    def broken_index():
        raise IndexUnavailable("the index is down")

    monkeypatch.setattr(sync, "writing_index", broken_index)
    with django_capture_on_commit_callbacks(execute=True):
        photo.metadata.category = "new"
        photo.metadata.save()
    page = viewer_client.get(reverse("gallery:index"), {"category": "new"}).content.decode()
    assert "<small>1 photo</small>" in page
    assert "1 photo is in the gallery but not searchable yet" in page  # the index could not be updated


@pytest.mark.django_db  # no commit: nothing embeds the photos meanwhile
def test_photos_waiting_for_search_are_counted_no_further_than_a_grid_is(viewer_client, monkeypatch):
    """Every gallery page says how many photos search cannot find yet: a million waiting for a new model
    must not be counted on each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from gallery.views import browse
    from tests.factories import make_photos

    make_photos(5)  # no vectors: waiting for their embeddings
    monkeypatch.setattr(browse, "COUNT_AT_ONCE", 3)
    with CaptureQueriesContext(connection) as queries:
        page = viewer_client.get(reverse("gallery:index")).content.decode()
    assert "More than 3 photos are in the gallery but not searchable yet" in page
    waiting = [q["sql"] for q in queries.captured_queries if "embedding_state" in q["sql"] and "COUNT" in q["sql"]]
    assert waiting and all("LIMIT 4" in sql for sql in waiting), waiting
    monkeypatch.setattr(browse, "COUNT_AT_ONCE", 10)  # each photo waits twice: its embedding, its index entry
    assert (
        "10 photos are in the gallery but not searchable yet"
        in viewer_client.get(reverse("gallery:index")).content.decode()
    )


def test_a_large_grid_shows_its_photos_first_and_its_count_by_a_second_request(viewer_client, library, monkeypatch):
    from gallery import selectors

    monkeypatch.setattr(selectors, "COUNT_AT_ONCE", 3)
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)  # (a grid on one page is counted by its photos)
    total = Image.objects.filter(metadata__category="travel").count()
    assert total > 3
    page = viewer_client.get(reverse("gallery:index"), {"category": "travel"}).content.decode()
    assert page.count('class="card-photo"') == 2 and "counting photos" in page
    assert "select all" not in page and 'hx-get="?category=travel"' in page
    counted = viewer_client.get(
        reverse("gallery:index"), {"category": "travel"}, HTTP_HX_TARGET="grid-count", **HTMX
    ).content.decode()
    assert f"<small>{total} photos</small>" in counted and f"select all {total} matching" in counted
    assert 'class="card-photo"' not in counted
    monkeypatch.setattr(selectors, "COUNT_AT_ONCE", Image.objects.count())  # a library this size: at once
    page = viewer_client.get(reverse("gallery:index"), {"category": "travel", "sort": "newest"}).content.decode()
    assert f"<small>{total} photos</small>" in page and "counting photos" not in page


def test_a_library_found_large_is_not_counted_again_for_every_page(viewer_client, library, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from gallery import selectors
    from gallery.versions import bump

    monkeypatch.setattr(selectors, "COUNT_AT_ONCE", 3)
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)

    def library_counts() -> int:
        bump()  # as after a change: the grid is not the cached one
        with CaptureQueriesContext(connection) as queries:
            page = viewer_client.get(reverse("gallery:index"), {"category": "travel"}).content.decode()
        assert "counting photos" in page
        library = 'FROM "gallery_image" WHERE "gallery_image"."trashed_at" IS NULL LIMIT 4)'
        return len([q for q in queries.captured_queries if "COUNT" in q["sql"] and library in q["sql"]])

    assert library_counts() == 1  # first found large...
    assert library_counts() == 0  # ...then remembered
    monkeypatch.setattr(selectors, "COUNT_AT_ONCE", Image.objects.count())  # another limit: asked anew
    page = viewer_client.get(reverse("gallery:index"), {"category": "travel", "sort": "newest"}).content.decode()
    assert "counting photos" not in page


def test_error_pages_use_the_apps_layout_and_say_why(viewer_client):
    missing = viewer_client.get("/images/999999/")
    assert missing.status_code == 404
    html = missing.content.decode()
    assert 'class="brand"' in html and "moved to the trash or deleted" in html and "Go to the gallery" in html
    refused = viewer_client.get(reverse("gallery:upload"))
    assert refused.status_code == 403
    assert 'class="brand"' in refused.content.decode() and "editor role" in refused.content.decode()


def test_a_viewer_refused_a_page_is_logged_in_one_line(viewer_client, caplog):
    response = viewer_client.get(reverse("gallery:upload"))
    assert response.status_code == 403 and "Only editors can upload photos." in response.content.decode()
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelname == "WARNING" and "Forbidden" in record.getMessage() and record.exc_info is None


def test_the_gallery_says_when_search_is_unavailable(viewer_client, library, settings):
    from search.embeddings import get_embedder

    assert "Search is unavailable" not in viewer_client.get(reverse("gallery:index")).content.decode()
    settings.IMGSIM_EMBEDDER = {
        **settings.IMGSIM_EMBEDDER,
        "OPTIONS": {**settings.IMGSIM_EMBEDDER["OPTIONS"], "model": "/nonexistent/model"},
    }
    get_embedder.cache_clear()
    viewer_client.get(reverse("search:page"), {"q": "x"})  # the model fails to load: remembered for a minute
    html = viewer_client.get(reverse("gallery:index")).content.decode()
    assert "Search is unavailable: Model folder" in html and 'class="card-photo"' in html


@pytest.mark.django_db
def test_the_sidebar_suggests_each_category_and_camera_once_in_order():
    from django.core.cache import cache

    from gallery.selectors import filter_choices
    from tests.factories import make_photo

    for category, camera in [("travel", "X100"), ("", "A7"), ("family", ""), ("travel", "A7"), ("city", "Z6")]:
        make_photo(category=category, camera_model=camera)
    cache.clear()
    choices = filter_choices()
    assert choices["categories"] == ["city", "family", "travel"]
    assert choices["cameras"] == ["A7", "X100", "Z6"]


def test_permissions_are_read_only_by_pages_that_show_an_action(editor_client, library):
    """The header's editor links ask; search results and a grid's next page, which show none, do not."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def permission_reads(*args, **headers):
        with CaptureQueriesContext(connection) as queries:
            response = editor_client.get(*args, **headers)
        assert response.status_code == 200
        return sum("auth_permission" in query["sql"] for query in queries.captured_queries), response

    full, page = permission_reads("/")
    assert full > 0 and 'href="/upload/"' in page.content.decode()
    partial, results = permission_reads("/search/", {"q": "photo"}, **HTMX)
    assert partial == 0 and 'class="card-photo"' in results.content.decode()
    more, _ = permission_reads("/", {"page": 2}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="grid-more")
    assert more == 0


def test_a_grid_after_a_change_renders_only_the_cards_that_changed(viewer_client, library):
    """Cards are kept by what they show: an edit re-renders its photo's card, the rest come from the cache."""
    from django.core.cache import caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from gallery.services import metadata_update

    cards = caches["cards"]._cache  # LocMemCache's entries: the public API has no count
    first = viewer_client.get("/").content.decode()
    kept = len(cards)
    newest = library[-1]
    assert kept == 60 and f"Photo number {len(library) - 1}" in first
    metadata_update(image=newest, fields={"title": "Harbour at dawn"})
    with CaptureQueriesContext(connection) as queries:
        second = viewer_client.get("/").content.decode()
    photo_reads = [q["sql"] for q in queries.captured_queries if 'FROM "gallery_image"' in q["sql"]]
    assert len(photo_reads) <= 10  # the page's own few, not one per card (a card shows what the page read)
    assert "Harbour at dawn" in second and f"Photo number {len(library) - 1}<" not in second
    assert len(cards) == kept + 1  # the one card that changed
    # A card links into the grid it was shown in: the same photo under a filter is its own card.
    filtered = viewer_client.get("/", {"category": "family"}).content.decode()
    assert re.search(rf'href="/images/{library[-2].pk}/\?category=family"', filtered)
    assert re.search(rf'href="/images/{library[-2].pk}/"', viewer_client.get("/").content.decode())
