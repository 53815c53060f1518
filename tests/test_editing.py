"""Editing a photo's details in place: the form, the page (HTMX and without JavaScript), the JSON API, a browser."""

import pytest
from django.urls import reverse

from gallery.forms import MetadataForm
from gallery.models import Image
from imgsim_site.tokens import token_create
from search.python_api import find_similar
from tests.browser import fits, login, shot
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)

HX = {"HX-Request": "true"}
VALID = {
    "title": "Eileen Collins at the launch pad",
    "description": "First woman to pilot a Space Shuttle.",
    "category": "space",
    "tags": "NASA, astronaut , nasa",
    "location": "Cape Canaveral",
    "taken_at": "1995-02-03T05:22:04",
    "latitude": "28.5729",
    "longitude": "-80.649",
}


@pytest.fixture
def photo(tmp_path, ingest) -> Image:
    write_library(tmp_path / "in", 3)
    ingest(tmp_path / "in")
    return Image.objects.order_by("pk").first()


def test_the_form_cleans_tags_and_refuses_impossible_values(photo):
    form = MetadataForm(VALID, instance=photo.metadata)
    assert form.is_valid(), form.errors
    fields, tags = form.changes()
    assert tags == ["nasa", "astronaut"] and fields["latitude"] == pytest.approx(28.5729)
    for change, field in [
        ({"latitude": "91"}, "latitude"),
        ({"longitude": "-181"}, "longitude"),
        ({"latitude": "inf"}, "latitude"),
        ({"taken_at": "yesterday"}, "taken_at"),
        ({"title": "x" * 201}, "title"),
        ({"tags": "ok, " + "t" * 65}, "tags"),
    ]:
        form = MetadataForm({**VALID, **change}, instance=photo.metadata)
        assert not form.is_valid() and field in form.errors, change
    lonely = MetadataForm({**VALID, "longitude": ""}, instance=photo.metadata)
    assert not lonely.is_valid() and "both latitude and longitude" in str(lonely.non_field_errors())


def test_an_editor_edits_in_place_and_filters_see_it_at_once(photo, editor_client):
    url = reverse("gallery:edit", args=[photo.pk])
    form = editor_client.get(url, headers=HX)
    assert form.status_code == 200 and 'id="photo-facts"' in form.content.decode()
    assert "<html" not in form.content.decode()  # a fragment for the swap
    saved = editor_client.post(url, VALID, headers=HX)
    html = saved.content.decode()
    assert saved.status_code == 200 and "Eileen Collins at the launch pad" in html and "Saved." in html
    meta = Image.objects.get(pk=photo.pk).metadata
    assert meta.location == "Cape Canaveral" and meta.taken_at.year == 1995 and meta.longitude == pytest.approx(-80.649)
    assert sorted(meta.tags.values_list("name", flat=True)) == ["astronaut", "nasa"]
    gallery = editor_client.get(reverse("gallery:index"), {"category": "space"}).content.decode()
    assert f"/images/{photo.pk}/" in gallery
    found = find_similar(query_text="photo", top_k=5, filter_metadata={"tags": "astronaut"})
    assert [hit["id"] for hit in found] == [photo.pk]


def test_errors_come_back_in_the_form_and_change_nothing(photo, editor_client):
    url = reverse("gallery:edit", args=[photo.pk])
    before = photo.metadata.title
    refused = editor_client.post(url, {**VALID, "latitude": "95"}, headers=HX)
    html = refused.content.decode()
    assert (
        refused.status_code == 422
        and "Latitude is between -90 and 90 degrees" in html
        and 'value="Eileen Collins' in html
    )
    assert Image.objects.get(pk=photo.pk).metadata.title == before


def test_without_javascript_the_form_is_a_page_and_saving_redirects(photo, editor_client):
    url = reverse("gallery:edit", args=[photo.pk])
    page = editor_client.get(url)
    assert page.status_code == 200 and "<html" in page.content.decode()
    saved = editor_client.post(url, VALID)
    assert saved.status_code == 302 and saved.url == reverse("gallery:detail", args=[photo.pk])


def test_viewers_see_the_facts_but_cannot_edit(photo, viewer_client):
    detail = viewer_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "Edit details" not in detail
    url = reverse("gallery:edit", args=[photo.pk])
    assert viewer_client.get(url).status_code == 403
    assert viewer_client.post(url, VALID).status_code == 403
    assert viewer_client.get(reverse("gallery:facts", args=[photo.pk])).status_code == 200


def test_the_json_api_patch_takes_date_and_gps_with_the_same_rules(photo, editor, client):
    url = f"/api/images/{photo.pk}"
    auth = {"Authorization": f"Bearer {token_create(user=editor, name='script')[1]}"}

    def patch(body):
        return client.patch(url, body, content_type="application/json", headers=auth)

    done = patch({"taken_at": "2001-07-04T12:00:00", "latitude": 40.0, "longitude": -74.0, "title": "Fourth"})
    assert done.status_code == 200, done.content
    body = done.json()["metadata"]
    assert body["taken_at"].startswith("2001-07-04") and body["latitude"] == 40.0 and body["title"] == "Fourth"
    kept = patch({"description": "only this"})
    assert kept.json()["metadata"]["latitude"] == 40.0 and kept.json()["metadata"]["title"] == "Fourth"
    too_far = patch({"latitude": 123})
    assert too_far.status_code == 400 and "latitude" in too_far.json()["error"]
    alone = patch({"latitude": None})
    assert alone.status_code == 400 and "both latitude and longitude" in alone.json()["error"]
    cleared = patch({"latitude": None, "longitude": None})
    assert cleared.status_code == 200 and cleared.json()["metadata"]["latitude"] is None


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_editing_in_a_browser_save_and_escape(browser, live_server, editor, photo, width):
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/images/{photo.pk}/")
    page.get_by_role("link", name="Edit details").click()
    page.get_by_label("Title").fill("Harbour at dawn")
    page.get_by_label("Tags").fill("boats, ")
    page.get_by_label("Tags").press_sequentially("sun")
    page.get_by_label("Latitude").fill("95")
    page.get_by_label("Longitude").fill("10")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Latitude is between -90 and 90 degrees").wait_for()
    assert page.url.endswith(f"/images/{photo.pk}/")  # no page load: the form came back in place
    page.get_by_label("Latitude").fill("45")
    shot(page, f"photo-edit-{width}", docs=width > 800)
    if width < 800:
        fits(page, width)
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    assert page.locator("h1").inner_text() == "Harbour at dawn"
    assert page.locator(".chips").inner_text().split() == ["boats", "sun"]
    page.get_by_role("link", name="Edit details").click()
    page.get_by_label("Title").fill("Not kept")
    page.get_by_label("Title").press("Escape")
    page.get_by_role("link", name="Edit details").wait_for()
    assert page.locator("h1").inner_text() == "Harbour at dawn"
    assert Image.objects.get(pk=photo.pk).metadata.title == "Harbour at dawn"
    page.context.close()


@pytest.mark.browser
def test_the_edit_page_of_its_own_goes_back_to_the_photo_once_saved(browser, live_server, editor, photo):
    """Opened as a page (a new tab, a shared link), the form once swapped the photo's facts into the
    edit page: a card with no photo, under a link still named after the old title."""
    page = login(browser, live_server, "eddie")
    page.goto(f"/images/{photo.pk}/edit/")
    page.get_by_label("Latitude").fill("95")
    page.get_by_label("Longitude").fill("10")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Latitude is between -90 and 90 degrees").wait_for()
    assert page.url.endswith(f"/images/{photo.pk}/edit/")
    page.get_by_label("Latitude").fill("45")
    page.get_by_label("Title").fill("Harbour at dawn")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**/images/{photo.pk}/")
    page.get_by_text("Saved.").wait_for()
    assert page.locator("h1").inner_text() == "Harbour at dawn"
    assert page.locator("[data-lightbox] img").is_visible()  # the photo page, not its facts alone
    page.goto(f"/images/{photo.pk}/edit/")
    page.get_by_label("Title").press("Escape")
    page.wait_for_url(f"**/images/{photo.pk}/")
    assert Image.objects.get(pk=photo.pk).metadata.title == "Harbour at dawn"
    page.context.close()
