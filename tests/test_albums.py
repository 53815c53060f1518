"""Albums: services keep the index's album names in step; pages for viewers and editors; ingest --album."""

import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from gallery.models import Album, Image
from gallery.services import album_add, album_create, album_delete, album_remove, album_update
from search.python_api import find_similar
from tests.browser import fits, login, shot
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def photos(tmp_path, ingest) -> list[Image]:
    write_library(tmp_path / "in", 6)
    ingest(tmp_path / "in")
    return list(Image.objects.order_by("pk"))


def in_album(name: str) -> set[int]:
    """What search (the index's copy, through the filter language) holds for this album."""
    return {
        hit["id"] for hit in find_similar(query_text="photo", top_k=50, threshold=-1, filter_metadata={"album": name})
    }


def test_album_services_keep_search_in_step(photos):
    trip = album_create(name="Trip to Lisbon")
    assert album_add(album=trip, images=photos[:3]) == 3
    assert album_add(album=trip, images=photos[:4]) == 1  # those already in it stay once
    assert trip.photos.count() == 4 and Album.objects.get().cover_id == photos[0].pk
    assert in_album("trip to lisbon") == {p.pk for p in photos[:4]}

    album_update(album=trip, name="Lisbon 2025", description="Tram 28")
    assert in_album("Lisbon 2025") == {p.pk for p in photos[:4]} and in_album("Trip to Lisbon") == set()

    assert album_remove(album=trip, images=[photos[0], photos[5]]) == 1
    trip.refresh_from_db()
    assert trip.cover_id == photos[1].pk  # the cover left: the next photo takes its place
    assert in_album("Lisbon 2025") == {p.pk for p in photos[1:4]}

    assert album_delete(album=trip) == 3
    assert Image.objects.count() == 6 and in_album("Lisbon 2025") == set()


def test_editors_create_fill_and_rename_albums_on_the_pages(photos, editor_client):
    created = editor_client.post(reverse("gallery:album_new"), {"name": "Team day", "description": "June"})
    album = Album.objects.get()
    assert created.status_code == 302 and created.url == reverse("gallery:album", args=[album.pk])
    again = editor_client.post(reverse("gallery:album_new"), {"name": "team DAY"})
    assert again.status_code == 400 and "already an album with this name" in again.content.decode()

    detail = reverse("gallery:detail", args=[photos[0].pk])
    add = {"ids": photos[0].pk, "album_id": album.pk, "next": detail}
    assert editor_client.post(reverse("gallery:album_photos"), add).url == detail
    new = {"ids": photos[1].pk, "new_album": "Portraits", "next": "https://evil.example/"}
    assert editor_client.post(reverse("gallery:album_photos"), new).url == "/albums/"  # no open redirect
    assert Album.objects.get(name="Portraits").photos.get() == photos[1]
    page = editor_client.get(detail).content.decode()
    assert "Team day" in page and "Take out of Team day" in page

    grid = editor_client.get(reverse("gallery:album", args=[album.pk])).content.decode()
    assert f"/images/{photos[0].pk}/" in grid and f"/images/{photos[1].pk}/" not in grid
    assert "Search within this album" in grid and "?album=Team%20day" in grid
    results = editor_client.get(reverse("search:page"), {"q": "photo", "album": "Team day", "threshold": -1})
    assert f"/images/{photos[0].pk}/" in results.content.decode()
    assert f"/images/{photos[1].pk}/" not in results.content.decode()

    editor_client.post(reverse("gallery:album_change", args=[album.pk]), {"name": "Team day 2025", "description": ""})
    assert Album.objects.get(pk=album.pk).name == "Team day 2025"
    refused = editor_client.post(reverse("gallery:album_change", args=[album.pk]), {"name": "portraits"}, follow=True)
    assert "already an album with this name" in refused.content.decode()
    assert Album.objects.get(pk=album.pk).name == "Team day 2025"

    remove = {"ids": photos[0].pk, "album_id": album.pk, "action": "remove", "next": detail}
    editor_client.post(reverse("gallery:album_photos"), remove)
    assert not album.photos.exists()
    gone = editor_client.post(reverse("gallery:album_delete", args=[album.pk]), headers={"HX-Request": "true"})
    assert gone.headers["HX-Redirect"] == reverse("gallery:albums") and Image.objects.count() == 6


def test_bad_album_requests_get_a_message(photos, editor_client):
    for bad in ({"ids": "abc", "album_id": 1}, {"ids": photos[0].pk}, {"ids": photos[0].pk, "album_id": 999}):
        page = editor_client.post(reverse("gallery:album_photos"), {**bad, "next": "/albums/"}, follow=True)
        assert page.status_code == 200 and 'class="error"' in page.content.decode(), bad
    assert not Album.objects.exists()


def test_viewers_see_albums_but_change_nothing(photos, viewer_client):
    album = album_create(name="Shared")
    album_add(album=album, images=photos[:2])
    assert "Shared" in viewer_client.get(reverse("gallery:albums")).content.decode()
    page = viewer_client.get(reverse("gallery:album", args=[album.pk])).content.decode()
    assert "Rename, describe or delete" not in page and f"/images/{photos[0].pk}/" in page
    assert viewer_client.post(reverse("gallery:album_new"), {"name": "Mine"}).status_code == 403
    assert viewer_client.post(reverse("gallery:album_delete", args=[album.pk])).status_code == 403
    add = {"ids": photos[3].pk, "album_id": album.pk}
    assert viewer_client.post(reverse("gallery:album_photos"), add).status_code == 403
    assert (
        album.photos.count() == 2
        and "Add to album" not in viewer_client.get(f"/images/{photos[0].pk}/").content.decode()
    )


def test_ingest_puts_the_run_in_an_album_including_photos_it_already_had(tmp_path, capsys):
    write_library(tmp_path / "first", 3)
    call_command("ingest", str(tmp_path / "first"), "--no-progress")
    write_library(tmp_path / "second", 5)  # the same three first photos and two new ones
    call_command("ingest", str(tmp_path / "second"), "--album", "Scans", "--no-progress")
    assert "Album “Scans”: 5 photo(s) added, 5 in all." in capsys.readouterr().out
    assert Album.objects.get(name="Scans").photos.count() == Image.objects.count() == 5


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_albums_in_a_browser(browser, live_server, editor, photos, width):
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/albums/")
    page.get_by_text("New album").click()
    page.get_by_label("Name").fill("Harbour walk")
    page.get_by_role("button", name="Create album").click()
    page.get_by_text("Album “Harbour walk” created").wait_for()
    for photo in photos[:2]:
        page.goto(f"/images/{photo.pk}/")
        page.get_by_label("Add to album").select_option(label="Harbour walk")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_text("Added 1 photo to “Harbour walk”").wait_for()
    page.get_by_role("link", name="Harbour walk").click()
    # the click only starts the navigation: wait for the album's page, not the photo page it leaves
    page.wait_for_url(re.compile(r"/albums/\d+/$"))
    expect(page.locator("#grid .card-photo")).to_have_count(2)
    if width < 800:
        fits(page, width)
    shot(page, f"album-{width}", docs=width > 800)
    page.get_by_role("link", name="Search within this album").click()
    page.wait_for_url("**/search/?album=Harbour*")
    assert page.locator("#id_album").input_value() == "Harbour walk"
    page.goto("/albums/")
    assert "2 photos" in page.locator(".albums").inner_text()
    page.context.close()


def test_an_editor_picks_the_cover_among_the_albums_photos(photos, editor_client):
    album = album_create(name="Covers")
    album_add(album=album, images=photos[:3])
    url = reverse("gallery:album_cover", args=[album.pk])
    editor_client.post(url, {"photo": photos[2].pk})
    assert Album.objects.get(pk=album.pk).cover_id == photos[2].pk
    page = editor_client.post(url, {"photo": photos[4].pk}, follow=True).content.decode()
    assert "is not in “Covers”" in page and Album.objects.get(pk=album.pk).cover_id == photos[2].pk
    detail = editor_client.get(reverse("gallery:detail", args=[photos[2].pk])).content.decode()
    assert 'class="muted">cover</small>' in detail


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_adding_search_results_to_an_album_and_searching_within_it(browser, live_server, editor, photos, width):
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/search/?q=photo&threshold=-1&top_k=3")
    page.get_by_role("button", name="Select").click()
    page.get_by_label("all shown").check()
    page.get_by_label("New album name").fill("From search")
    page.get_by_role("button", name="Add to album").click()
    page.get_by_text("Added 3 photos to “From search”.").wait_for()
    album = Album.objects.get(name="From search")
    page.goto(f"/albums/{album.pk}/")
    assert page.locator("#grid .card-photo").count() == 3
    page.get_by_role("link", name="Search within this album").click()
    page.get_by_label("Describe the photo").fill("photo")
    page.wait_for_function("document.querySelectorAll('#results .grid .card-photo').length === 3")
    shown = {
        int(href.split("/")[2])
        for href in page.locator("#results .grid .card-photo > a").evaluate_all(
            "l => l.map(a => a.getAttribute('href'))"
        )
    }
    assert shown == set(album.photos.values_list("pk", flat=True))
    page.goto("/albums/")
    if width < 800:
        fits(page, width)
    shot(page, f"albums-{width}", docs=width > 800)
    page.context.close()


def test_an_empty_album_says_how_to_fill_it(viewer_client):
    from tests.factories import make_photo

    make_photo()  # a library with a photo, but not in the album
    album = album_create(name="Nothing yet")
    page = viewer_client.get(reverse("gallery:album", args=[album.pk])).content.decode()
    assert "This album is empty" in page and "No photos match these filters" not in page
