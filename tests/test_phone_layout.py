"""Every page on phones (360-430 px): nothing scrolls sideways, the nav is one row, photos come first."""

import pytest

from gallery.models import Image
from gallery.services import album_add, album_create
from tests.browser import login, shot
from tests.photos import write_library

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def library(tmp_path, ingest, editor):
    write_library(tmp_path / "in", 8, size=(320, 240))
    ingest(tmp_path / "in")
    album = album_create(name="A long album name for a small screen")
    album_add(album=album, images=list(Image.objects.all()[:3]))
    return album


def pages(album) -> list[str]:
    photo = Image.objects.order_by("pk").first()
    return [
        "/",
        "/?category=travel&year=2020&taken_from=2020-01-01&min_width=100",
        "/albums/",
        f"/albums/{album.pk}/",
        f"/images/{photo.pk}/",
        "/search/",
        "/search/?q=red+car+at+night&top_k=5",
        "/stats/",
        "/duplicates/",
        "/trash/",
        "/upload/",
        "/profile/",
        "/no-such-page/",
    ]


@pytest.mark.parametrize("width", [360, 390, 430])
def test_no_page_scrolls_sideways_on_a_phone(browser, live_server, library, width):
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 844})
    page.goto("/profile/")
    page.fill("#id_token_name", "a token with a rather long name for a phone")
    page.get_by_role("button", name="Create token").click()
    page.locator("#new-token").wait_for()
    for url in pages(library):
        page.goto(url)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"{url} is {scroll}px wide on a {width}px screen"
        nav = page.locator(".topbar").bounding_box()
        assert nav["height"] <= 64, f"{url}: the nav takes {nav['height']}px"
    page.goto("/upload/")
    zone, field = page.locator(".dropzone").bounding_box(), page.locator("#id_files").bounding_box()
    assert field["x"] >= zone["x"] and field["x"] + field["width"] <= zone["x"] + zone["width"]  # inside its zone
    page.goto("/profile/")
    box = page.get_by_role("button", name="Revoke").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width  # on screen, not cut off
    shot(page, f"profile-{width}")
    page.set_viewport_size({"width": 1280, "height": 800})  # one row there: the label beside its field
    label = page.locator("label[for=id_token_name]").bounding_box()
    field = page.locator("#id_token_name").bounding_box()
    assert abs((label["y"] + label["height"] / 2) - (field["y"] + field["height"] / 2)) <= 2
    page.context.close()


def test_the_phone_nav_fades_where_more_links_are_and_shows_the_current_page(browser, live_server, library):
    """The nav scrolls sideways with no scrollbar: without a cue, links past the edge (Trash, Upload,
    Log out) looked absent, and on their own pages the current link was off screen."""
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    nav = page.locator(".topbar nav")
    assert nav.get_attribute("data-more-after") is not None and nav.get_attribute("data-more-before") is None
    assert "linear-gradient" in nav.evaluate("n => getComputedStyle(n).maskImage")
    shot(page, "phone-nav-more-after")
    nav.evaluate("n => { n.scrollLeft = n.scrollWidth; }")
    page.wait_for_function("!document.querySelector('.topbar nav').hasAttribute('data-more-after')")
    assert nav.get_attribute("data-more-before") is not None
    page.goto("/trash/")
    current, shown = page.locator(".topbar nav [aria-current]").bounding_box(), nav.bounding_box()
    assert current["x"] >= shown["x"] and current["x"] + current["width"] <= shown["x"] + shown["width"]
    shot(page, "phone-nav-current-trash")
    page.set_viewport_size({"width": 1280, "height": 844})
    page.wait_for_function("!document.querySelector('.topbar nav').hasAttribute('data-more-before')")
    assert nav.get_attribute("data-more-after") is None
    assert nav.evaluate("n => getComputedStyle(n).maskImage") == "none"


@pytest.mark.parametrize("width", [360, 390])
def test_the_statistics_numbers_sit_two_to_a_row_on_a_phone(browser, live_server, library, width):
    """One to a row, the six numbers took two screens of a phone before the first chart."""
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 844})
    page.goto("/stats/")
    boxes = [page.locator(".numbers .number").nth(i).bounding_box() for i in range(2)]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"stats-{width}")


def test_filtered_gallery_shows_photos_first_on_a_phone(browser, live_server, library):
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/?min_width=100")
    first_card = page.locator(".card-photo").first.bounding_box()
    assert first_card["y"] < 844  # above the fold: the filter panel starts closed
    assert page.locator("details.filter-panel summary").inner_text() == "Filters (1)"
    page.context.close()


def test_date_fields_show_whole_dates_on_a_desktop(browser, live_server, library):
    page = login(browser, live_server, "eddie")
    page.goto("/")
    for name in ("taken_from", "taken_to"):
        field = page.locator(f"#filters input[name={name}]")
        assert field.bounding_box()["width"] >= 180  # one per line in the sidebar: "mm/dd/yyyy" and the picker fit
    page.context.close()


def test_search_unavailable_is_said_above_the_form_on_a_phone(browser, live_server, library, settings):
    from search.embeddings import get_embedder

    settings.IMGSIM_EMBEDDER = {
        **settings.IMGSIM_EMBEDDER,
        "OPTIONS": {**settings.IMGSIM_EMBEDDER["OPTIONS"], "model": "/nonexistent/model"},
    }
    get_embedder.cache_clear()
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/search/?q=red+car")
    alert = page.get_by_role("alert")
    assert "Search is unavailable" in alert.inner_text() and alert.count() == 1
    assert alert.bounding_box()["y"] < page.locator("#search-form").bounding_box()["y"]
    shot(page, "search-unavailable-390")
    page.context.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_the_search_pages_filters_stack_each_label_above_its_field(browser, live_server, library, width):
    """As in the gallery's sidebar: inside the search form's Filters, labels and fields ran on in lines."""
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 844})
    page.goto("/search/?q=red+car&year=2020")  # a filter set: the panel starts open
    for name in ("album", "category", "tag", "camera", "year", "has_gps", "format"):
        label = page.locator(f"#search-form label[for=id_{name}]").bounding_box()
        field = page.locator(f"#search-form [name={name}]").bounding_box()
        assert label["y"] + label["height"] <= field["y"] + 1, f"{name}: its label is not above it"
        assert abs(label["x"] - field["x"]) <= 2, f"{name}: its label and field do not start in one column"
    shot(page, f"search-filters-{width}")
    page.context.close()
