"""End to end in a real headless Chromium against a live server with the tiny model.

Screenshots of every page land in test-artifacts/ (ignored by git) for review.
"""

import re

import pytest

from gallery.models import Image, Metadata
from tests.browser import login, shot
from tests.photos import write_library

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def library(tmp_path, ingest):
    write_library(tmp_path / "in", 70, size=(96, 72))
    ingest(tmp_path / "in", batch_size=35)
    for i, meta in enumerate(Metadata.objects.order_by("image_id")):
        meta.category = "travel" if i % 2 else "family"
        meta.title = f"Photo {i}"
        meta.save()


@pytest.fixture
def page(browser, live_server, viewer, library):
    page = login(browser, live_server, "vera")
    yield page
    page.context.close()


def cards(page) -> int:
    return page.locator("#grid .card-photo").count()


def test_gallery_scrolls_filters_and_keeps_state_in_the_url(page):
    assert cards(page) == 60
    shot(page, "gallery")
    page.locator("#grid-more").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('#grid .card-photo').length === 70")
    assert page.locator("#grid-more").count() == 0
    page.select_option("#id_format", "JPEG")
    # Seen before the next filter: a request still in flight is replaced by the next one (hx-sync).
    page.wait_for_url(re.compile(r"format=JPEG"))
    page.fill("#id_category", "travel")
    page.press("#id_category", "Enter")
    page.wait_for_url(re.compile(r"category=travel"))
    page.wait_for_function("document.querySelectorAll('#grid .card-photo').length === 35")
    assert page.get_by_text("category: travel").count() == 1
    shot(page, "gallery-filtered")
    page.go_back()
    page.wait_for_url(re.compile(r"format=JPEG(?!.*category=travel)"))


def test_search_updates_as_you_type_and_more_like_this(page):
    page.click("nav >> text=Search")
    page.goto("/search/?threshold=-1")  # the tiny random model's similarities are around 0
    page.fill("#id_q", "red car")
    page.wait_for_url(re.compile(r"search/\?q=red(\+|%20)car&top_k=24&threshold=-1$"))
    page.wait_for_selector("#results .card-photo")
    first = page.locator("#results .card-photo a").first.get_attribute("href")
    page.fill("#id_q", "red car -people")
    page.wait_for_selector("text=not: people")
    shot(page, "search")
    page.goto(first)
    page.wait_for_selector("#similar-strip .card-photo")  # lazy strip loaded by htmx
    assert page.locator("#similar-strip .score").count() == 12
    shot(page, "detail")
    page.click("text=More like this")
    page.wait_for_selector("#results .card-photo")
    assert "like=" in page.url
    shot(page, "more-like-this")


def test_stats_page_draws_charts(page):
    page.click("nav >> text=Stats")
    page.wait_for_selector("svg rect.bar")
    assert page.locator("figure.chart").count() == 5
    shot(page, "stats")
    page.locator("figure.chart", has_text="Top categories").locator("a").first.click()
    page.wait_for_url(re.compile(r"category="))
    assert page.locator("#grid .card-photo").count() == 35


def test_a_large_librarys_first_statistics_fill_in_by_themselves(page, monkeypatch):
    import threading

    from django.core.cache import caches

    from gallery import stats
    from tests.browser import fits

    caches["shared"].clear()  # never counted
    monkeypatch.setattr(stats, "FIRST_IN_BACKGROUND_ABOVE", 10)  # 70 photos: counted in the background
    go_on, compute = threading.Event(), stats._compute
    monkeypatch.setattr(stats, "_compute", lambda **options: go_on.wait(timeout=60) and compute(**options))
    page.goto("/stats/")
    assert page.get_by_role("status").filter(has_text="Counting the library's photos").is_visible()
    fits(page, 390)
    shot(page, "stats-counting-phone")
    go_on.set()
    page.wait_for_selector("svg rect.bar")  # the page asked again and swapped the numbers in, without a reload
    assert page.locator(".card.number").first.inner_text().split() == ["70", "photos"]
    assert page.get_by_text("Counting").count() == 0
    assert page.url.endswith("/stats/")


def test_keyboard_and_phone_width(page):
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent").strip() == "Skip to content"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"page is {width}px wide on a 360px screen"
    images = page.locator("img")
    assert all(images.nth(i).get_attribute("alt") for i in range(min(images.count(), 20)))
    shot(page, "gallery-phone")


def test_upload_in_the_browser(browser, live_server, editor, tmp_path):
    page = login(browser, live_server, "eddie")
    page.goto("/upload/")
    files = write_library(tmp_path / "up", 2, start=500)
    (tmp_path / "up" / "notes.jpg").write_text("not a photo")
    page.set_input_files("#id_files", [*map(str, files), str(tmp_path / "up" / "notes.jpg")])
    page.click("button:has-text('Upload')")
    # One request per file, each with its own progress bar, then its own result line.
    page.wait_for_function(
        "document.querySelectorAll('#upload-results .outcome').length === 3"
        " && !document.querySelector('.outcome.uploading')"
    )
    assert page.locator(".outcome.added").count() == 2
    assert page.locator(".outcome.not_image").count() == 1
    shot(page, "upload")
    assert Image.objects.count() == 2
    page.context.close()


def test_resolve_a_duplicate_group(browser, live_server, editor, tmp_path, ingest, pixel_embedder):
    from search.duplicates import start_scan
    from tests.photos import photo_image

    base = photo_image(3, size=(800, 600))
    (tmp_path / "dup").mkdir()
    base.save(tmp_path / "dup" / "big.jpg", quality=92)
    base.resize((400, 300)).save(tmp_path / "dup" / "small.jpg", quality=80)
    ingest(tmp_path / "dup")
    start_scan()
    page = login(browser, live_server, "eddie")
    page.click("nav >> text=Duplicates")
    page.wait_for_selector(".group")
    assert page.locator(".member.keeper").count() == 1
    assert "big.jpg" in page.locator(".member.keeper").inner_text()
    shot(page, "duplicates")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Keep the chosen photo')")
    page.wait_for_selector(".resolved")
    assert page.locator(".group").count() == 0
    assert Image.objects.trashed().get().original_name == "small.jpg"
    page.context.close()


def test_a_scan_started_on_an_empty_review_page_shows_its_groups_when_it_ends(
    browser, live_server, editor, tmp_path, ingest, pixel_embedder
):
    """It said "17 pairs found. Show the results" above "No duplicates waiting for review" until the
    link was clicked; a page with no group to lose now loads them itself."""
    from tests.photos import photo_image

    base = photo_image(4, size=(800, 600))
    (tmp_path / "dup").mkdir()
    base.save(tmp_path / "dup" / "big.jpg", quality=92)
    base.resize((400, 300)).save(tmp_path / "dup" / "small.jpg", quality=80)
    ingest(tmp_path / "dup")
    page = login(browser, live_server, "eddie")
    page.goto("/duplicates/")
    assert page.locator(".group").count() == 0 and "No scan yet." in page.locator("#scan-status").inner_text()
    page.get_by_role("button", name="Scan now").click()
    page.wait_for_selector(".group")
    assert "big.jpg" in page.locator(".member.keeper").inner_text()
    line = page.locator("#scan-status").inner_text()
    assert re.search(r"Last scan \((just now|a second ago|\d+ seconds ago)\): 1 pair found", line), line
    page.context.close()
