"""Back and Forward as people use them: one entry per search, fields that match the results, the
place in the infinite scroll kept."""

import re

import pytest

from gallery.models import Image, Metadata
from tests.browser import login
from tests.photos import write_library

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def library(tmp_path, ingest):
    write_library(tmp_path / "in", 130, size=(64, 48))
    ingest(tmp_path / "in", batch_size=65)
    for i, meta in enumerate(Metadata.objects.order_by("image_id")):
        meta.category = "travel" if i % 2 else "family"
        meta.camera_make = "Canon" if i % 3 else "Nikon"
        meta.save()


@pytest.fixture
def page(browser, live_server, viewer, library):
    page = login(browser, live_server, "vera")
    yield page
    page.context.close()


def history_length(page) -> int:
    return page.evaluate("history.length")


def test_typing_a_search_replaces_the_entry_and_enter_adds_one(page):
    page.goto("/search/?threshold=-1")
    before = history_length(page)
    for text in ("r", "re", "red", "red c", "red car"):  # pauses longer than the 300 ms debounce
        with page.expect_response(re.compile(r"/search/\?")):
            page.fill("#id_q", text)
    page.wait_for_url(re.compile(r"q=red(\+|%20)car"))
    assert history_length(page) == before  # five searches, no new entries
    with page.expect_response(re.compile(r"/search/\?")):
        page.press("#id_q", "Enter")
    # htmx pushes the entry after the swap, a moment after the response
    page.wait_for_function(f"history.length === {before + 1}")


def test_enter_in_a_gallery_filter_sends_one_search_and_back_restores_the_fields(page):
    sent = []
    page.on("request", lambda request: sent.append(request.url) if "camera=" in request.url else None)
    before = history_length(page)
    page.fill("#id_camera", "Canon")
    with page.expect_response(re.compile(r"camera=Canon")):
        page.press("#id_camera", "Enter")
    page.wait_for_url(re.compile(r"camera=Canon"))
    assert len(sent) == 1 and history_length(page) == before + 1
    page.fill("#id_category", "travel")
    with page.expect_response(re.compile(r"category=travel")):
        page.press("#id_category", "Enter")
    page.wait_for_url(re.compile(r"category=travel"))
    travel_canon = Image.objects.filter(metadata__category="travel", metadata__camera_make="Canon").count()
    assert page.locator("#grid .card-photo").count() == travel_canon
    page.go_back()
    page.wait_for_url(re.compile(r"camera=Canon(?!.*category)"))
    page.wait_for_function("document.querySelector('#id_category').value === ''")
    assert page.input_value("#id_camera") == "Canon"
    page.go_forward()
    page.wait_for_url(re.compile(r"category=travel"))
    page.wait_for_function("document.querySelector('#id_category').value === 'travel'")


def test_back_from_a_photo_deep_in_the_scroll_returns_to_it(page):
    page.locator("#grid-more").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('#grid .card-photo').length === 120")
    page.wait_for_url(re.compile(r"upto=2"))
    card = page.locator("#grid .card-photo").nth(100)
    card.scroll_into_view_if_needed()
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 1000
    card.locator("a").click()
    page.wait_for_url(re.compile(r"/images/\d+/"))
    page.go_back()
    page.wait_for_url(re.compile(r"upto=2"))
    page.wait_for_function("document.querySelectorAll('#grid .card-photo').length === 120")
    page.wait_for_function(f"Math.abs(window.scrollY - {scrolled}) < 200")  # the browser put the place back
