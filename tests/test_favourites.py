"""Favourites: each person's own stars, in the one filter language, on cached grids shared by everyone."""

import pytest
from django.urls import reverse

from gallery.models import Favourite, Image
from gallery.services import favourite_set
from search.python_api import find_similar
from tests.browser import fits, login
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def photos(tmp_path, ingest) -> list[Image]:
    write_library(tmp_path / "in", 5)
    ingest(tmp_path / "in")
    return list(Image.objects.order_by("pk"))


def starred_by(username: str) -> set[int]:
    hits = find_similar(query_text="photo", top_k=20, threshold=-1, filter_metadata={"favourite_of": username})
    return {hit["id"] for hit in hits}


def cards(html: str) -> set[int]:
    import re

    return {int(pk) for pk in re.findall(r'href="/images/(\d+)/', html.split('id="grid"', 1)[1])}


def test_stars_are_per_person_and_searchable(photos, editor, viewer):
    assert favourite_set(user=editor, images=photos[:2], on=True) == 2
    assert favourite_set(user=editor, images=photos[:3], on=True) == 1
    assert favourite_set(user=viewer, images=[photos[4]], on=True) == 1
    assert starred_by("eddie") == {p.pk for p in photos[:3]} and starred_by("VERA") == {photos[4].pk}
    assert favourite_set(user=editor, images=[photos[0], photos[4]], on=False) == 1
    assert starred_by("eddie") == {p.pk for p in photos[1:3]}


def test_the_favourites_filter_shows_each_person_their_own_even_from_the_cached_grid(photos, editor, viewer, client):
    favourite_set(user=editor, images=photos[:2], on=True)
    favourite_set(user=viewer, images=[photos[3]], on=True)
    client.force_login(editor)
    assert cards(client.get(reverse("gallery:index"), {"favourites": "on"}).content.decode()) == {
        p.pk for p in photos[:2]
    }
    client.force_login(viewer)  # the same URL, the same library version: not the same answer
    page = client.get(reverse("gallery:index"), {"favourites": "on"}).content.decode()
    assert cards(page) == {photos[3].pk}
    assert f'<script type="application/json" id="my-favourites">[{photos[3].pk}]</script>' in page
    assert (
        'href="?category=travel" aria-label="Remove filter favourites: mine">'
        in client.get(reverse("gallery:index"), {"category": "travel", "favourites": "on"}).content.decode()
    ), "a removable chip says the grid shows only my favourites"
    search = client.get(reverse("search:page"), {"q": "photo", "favourites": "on", "threshold": -1}).content.decode()
    assert f"/images/{photos[3].pk}/" in search and f"/images/{photos[0].pk}/" not in search


def test_a_viewer_stars_and_unstars_with_one_click(photos, viewer_client):
    url = reverse("gallery:favourite", args=[photos[0].pk])
    on = viewer_client.post(url, {"on": "1"}, headers={"HX-Request": "true"})
    answer = on.content.decode()
    assert on.status_code == 200 and 'aria-pressed="true"' in answer and "data-known" in answer
    off = viewer_client.post(url, {"on": "0", "next": "https://evil.example/"})
    assert off.status_code == 302 and off.url == reverse("gallery:detail", args=[photos[0].pk])
    assert not Favourite.objects.exists()
    assert viewer_client.post(reverse("gallery:favourite", args=[999999]), {"on": "1"}).status_code == 404


def test_the_photo_page_shows_the_persons_own_star_from_the_one_read_of_their_stars(photos, editor, viewer, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    favourite_set(user=editor, images=photos[:2], on=True)
    favourite_set(user=viewer, images=[photos[2]], on=True)
    for person, starred in ((editor, {photos[0].pk, photos[1].pk}), (viewer, {photos[2].pk})):
        client.force_login(person)
        for photo in photos[:3]:
            with CaptureQueriesContext(connection) as asked:
                page = client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
            star = page.split('<div class="title-row">', 1)[1].split("</button>", 1)[0]
            assert f'aria-pressed="{str(photo.pk in starred).lower()}"' in star, (person, photo.pk)
            listed = f'id="my-favourites">{sorted(starred)}</script>'.replace(" ", "")
            assert listed in page.replace(", ", ","), listed
            assert sum("gallery_favourite" in q["sql"] for q in asked.captured_queries) == 1


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_starring_in_a_browser(browser, live_server, editor, photos, width):
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    first = page.locator(f'#grid button[data-favourite="{photos[0].pk}"]:not([hidden])')
    first.focus()  # on a desktop, stars of unstarred photos show on hover or focus
    first.click()
    page.wait_for_selector(f'#grid button[data-favourite="{photos[0].pk}"][aria-pressed="true"]')
    page.reload()  # the grid comes from the shared cache; the star from this person's list
    assert page.locator(f'#grid button[data-favourite="{photos[0].pk}"]').get_attribute("aria-pressed") == "true"
    assert page.locator(f'#grid button[data-favourite="{photos[1].pk}"]').get_attribute("aria-pressed") == "false"
    page.goto("/?favourites=on")
    assert page.locator("#grid .card-photo").count() == 1
    if width < 800:
        fits(page, width)
    page.goto(f"/images/{photos[0].pk}/")
    star = page.locator(".title-row .star")
    assert star.get_attribute("aria-pressed") == "true"
    star.click()
    page.wait_for_selector('.title-row .star[aria-pressed="false"]')
    assert not Favourite.objects.exists()
    page.context.close()
