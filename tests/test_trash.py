"""One trash for everything: the trash page, "Move to trash" on a photo, the admin, the API, and trashed media."""

import json
import re

import pytest
from django.urls import reverse

from gallery.models import Image
from gallery.services import image_trash
from imgsim_site.tokens import token_create
from tests.factories import make_photo, make_photos
from tests.photos import write_library

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def trashed_ids() -> set[int]:
    return set(Image.objects.trashed().values_list("pk", flat=True))


def test_trash_page_lists_newest_first_with_pages(editor_client):
    photos = make_photos(65)
    for photo in photos:  # one at a time: each gets its own, later trash time
        image_trash(images=[photo])
    first = editor_client.get(reverse("gallery:trash")).content.decode()
    names = re.findall(r'aria-label="Select (photo_\d+\.jpg)"', first)
    assert len(names) == 60 and names[0] == photos[-1].original_name and names[-1] == photos[5].original_name
    assert "page 1 of 2" in first and "65</strong> photos" in first
    second = editor_client.get(reverse("gallery:trash"), {"page": 2}).content.decode()
    assert re.findall(r'aria-label="Select (photo_\d+\.jpg)"', second)[-1] == photos[0].original_name


def test_the_trash_says_when_each_photo_went_as_people_say_it(editor_client):
    """humanize's naturaltime called the last second "now": right after a trash, "trashed now"."""
    from datetime import timedelta

    from django.utils import timezone

    just, earlier = make_photos(2, trashed=True)
    Image.objects.filter(pk=earlier.pk).update(trashed_at=timezone.now() - timedelta(hours=3, minutes=5))
    page = editor_client.get(reverse("gallery:trash")).content.decode()
    assert "trashed just now ·" in page and "trashed 3\xa0hours ago ·" in page


def test_restore_of_fifty_photos_is_one_request_and_updates_the_header(editor_client):
    photos = make_photos(50, trashed=True)
    make_photos(3, trashed=True)
    response = editor_client.post(reverse("gallery:trash_restore"), {"ids": [p.pk for p in photos]}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "Restored 50 photos to the library." in html
    assert len(trashed_ids()) == 3
    assert re.search(r'<span id="nav-trash-count" hx-swap-oob="true">3</span>', html)  # the header's count


def test_actions_without_javascript_redirect_and_never_answer_405(editor_client):
    photos = make_photos(2, trashed=True)
    response = editor_client.post(reverse("gallery:trash_restore"), {"ids": [photos[0].pk], "page": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("gallery:trash") + "?page=1"
    page = editor_client.get(response["Location"]).content.decode()
    assert "Restored 1 photo to the library." in page
    assert trashed_ids() == {photos[1].pk}
    nothing = editor_client.post(reverse("gallery:trash_restore"), {})
    assert nothing.status_code == 302
    assert "Select at least one photo first." in editor_client.get(nothing["Location"]).content.decode()


def test_delete_for_good_always_asks_first(editor_client, tmp_path, ingest, django_capture_on_commit_callbacks):
    write_library(tmp_path / "in", 3)
    ingest(tmp_path / "in")
    photos = list(Image.objects.order_by("pk"))
    image_trash(images=photos)
    # No confirmation: a page that asks, with the number of photos and their size; nothing is deleted.
    asked = editor_client.post(reverse("gallery:trash_delete"), {"ids": [p.pk for p in photos[:2]]})
    html = asked.content.decode()
    size = sum(p.byte_size for p in photos[:2])
    assert asked.status_code == 200 and "Delete 2 photos (" in html and "for good?" in html
    assert f"{size / 1024:.1f}\xa0KB" in html
    assert Image.objects.count() == 3
    assert html.count('name="ids"') == 2 and 'name="confirmed" value="1"' in html
    # The confirmation page's own form re-posts the same ids with confirmed=1.
    with django_capture_on_commit_callbacks(execute=True):  # files go once the deletion has committed
        done = editor_client.post(
            reverse("gallery:trash_delete"), {"ids": [p.pk for p in photos[:2]], "confirmed": "1"}
        )
    assert done.status_code == 302
    assert list(Image.objects.values_list("pk", flat=True)) == [photos[2].pk]
    from gallery import storage

    assert not storage.original_path(photos[0]).exists() and storage.original_path(photos[2]).exists()


def test_select_everything_in_the_trash(editor_client):
    make_photos(70, trashed=True)
    asked = editor_client.post(reverse("gallery:trash_delete"), {"all": "1"}, headers=HTMX)
    assert "Delete 70 photos" in asked.content.decode() and Image.objects.count() == 70
    editor_client.post(reverse("gallery:trash_restore"), {"all": "1"}, headers=HTMX)
    assert not trashed_ids()


def test_move_to_trash_from_the_photo_page_and_undo(editor_client, viewer):
    from django.test import Client

    viewer_client = Client()
    viewer_client.force_login(viewer)
    photo = make_photo(name="beach.jpg")
    page = editor_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert "Move to trash" in page and 'hx-confirm="Move beach.jpg to the trash?' in page
    assert "Move to trash" not in viewer_client.get(reverse("gallery:detail", args=[photo.pk])).content.decode()
    assert viewer_client.post(reverse("gallery:image_trash", args=[photo.pk])).status_code == 403
    response = editor_client.post(reverse("gallery:image_trash", args=[photo.pk]), headers=HTMX)
    html = response.content.decode()
    assert "is in the trash" in html and reverse("gallery:trash_restore") in html
    assert trashed_ids() == {photo.pk}
    assert editor_client.get(reverse("gallery:detail", args=[photo.pk])).status_code == 404
    undo = editor_client.post(
        reverse("gallery:trash_restore"), {"ids": [photo.pk], "next": reverse("gallery:detail", args=[photo.pk])}
    )
    assert undo["Location"] == reverse("gallery:detail", args=[photo.pk]) and not trashed_ids()
    elsewhere = editor_client.post(reverse("gallery:image_trash", args=[photo.pk]))  # without JavaScript
    assert elsewhere["Location"] == reverse("gallery:trash")
    bounced = editor_client.post(reverse("gallery:trash_restore"), {"ids": [photo.pk], "next": "https://evil.example/"})
    assert bounced["Location"].startswith(reverse("gallery:trash"))  # no open redirect


def test_api_delete_moves_to_the_trash(client, viewer, editor):
    photo = make_photo()
    _, viewer_key = token_create(user=viewer, name="v")
    _, editor_key = token_create(user=editor, name="e")
    url = reverse("api:image", args=[photo.pk])
    refused = client.delete(url, headers={"Authorization": f"Bearer {viewer_key}"})
    assert refused.status_code == 403 and not trashed_ids()
    response = client.delete(url, headers={"Authorization": f"Bearer {editor_key}"})
    assert response.status_code == 200 and response.json()["trashed"] is True
    assert trashed_ids() == {photo.pk}
    assert client.delete(url, headers={"Authorization": f"Bearer {editor_key}"}).status_code == 404


def test_admin_delete_moves_to_the_trash_and_delete_for_good_is_separate(client, admin_user):
    client.force_login(admin_user)
    photo, other, third = make_photos(3)
    change = reverse("admin:gallery_image_delete", args=[photo.pk])
    asked = client.get(change).content.decode()
    assert "Move the photo" in asked and "to the trash?" in asked
    response = client.post(change, {"post": "yes"})
    assert response.status_code == 302 and trashed_ids() == {photo.pk}
    changelist = reverse("admin:gallery_image_changelist")
    actions = client.get(changelist).content.decode()
    assert "delete_selected" not in actions and "Delete selected photos for good" in actions
    asked = client.post(changelist, {"action": "delete_for_good", "_selected_action": [other.pk]})
    assert "for good, files included?" in asked.content.decode() and Image.objects.count() == 3
    client.post(changelist, {"action": "delete_for_good", "_selected_action": [other.pk], "post": "yes"})
    assert not Image.objects.filter(pk=other.pk).exists()
    client.post(changelist, {"action": "trash_selected", "_selected_action": [third.pk], "post": "yes"})
    assert trashed_ids() == {photo.pk, third.pk}


def test_trashed_files_are_served_only_to_editors_with_short_cache(client, viewer, editor, tmp_path, ingest):
    write_library(tmp_path / "in", 1)
    ingest(tmp_path / "in")
    photo = Image.objects.get()
    urls = [
        reverse("gallery:original", args=[photo.pk]),
        reverse("gallery:rendition", args=[photo.pk, "preview"]),
        reverse("gallery:rendition", args=[photo.pk, "thumb"]),
    ]
    client.force_login(viewer)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200
        assert response["Cache-Control"] == "private, max-age=600" and "immutable" not in response["Cache-Control"]
        assert client.get(url, headers={"If-None-Match": response["ETag"]}).status_code == 304
    image_trash(images=[photo])
    for url in urls:
        assert client.get(url).status_code == 404
    client.force_login(editor)  # editors see them on the trash page
    assert all(client.get(url).status_code == 200 for url in urls)


def test_every_destructive_button_asks(editor_client):
    make_photos(2, trashed=True)
    html = editor_client.get(reverse("gallery:trash")).content.decode()
    delete = re.search(r"<button[^>]*trash/delete/[^>]*>", html, re.S).group(0)
    assert "hx-confirm=" in delete and "confirmed" in delete  # the element that sends the request asks
    assert "data-confirm-selection=" in delete


def test_openapi_describes_delete(editor_client):
    document = json.loads(editor_client.get(reverse("api:openapi")).content)
    assert "delete" in document["paths"]["/images/{id}"]
