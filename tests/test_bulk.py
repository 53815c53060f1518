"""Acting on many photos at once: one request, one transaction, one index sync; the bar in a real browser."""

import io
import re
import zipfile

import pytest
from django.urls import reverse

from gallery.models import Album, Favourite, Image, Metadata
from gallery.services import album_add, category_set, favourite_set, image_trash, tags_add, tags_remove
from search.index import get_index
from search.python_api import find_similar
from tests.browser import fits, login, shot
from tests.photos import write_library, write_photo
from tests.rows import photo_rows

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HX-Request": "true"}


@pytest.fixture
def photos(tmp_path, ingest) -> list[Image]:
    write_library(tmp_path / "in", 8, size=(160, 120))
    ingest(tmp_path / "in")
    return list(Image.objects.order_by("pk"))


def found(**where) -> set[int]:
    return {hit["id"] for hit in find_similar(query_text="photo", top_k=100, threshold=-1, filter_metadata=where)}


def in_chroma(**where) -> set[int]:
    """What Chroma's own metadata says (search reads its columns cache for small libraries)."""
    from gallery.filters import to_chroma
    from search.embeddings import get_embedder, model_name

    vector = get_embedder().encode_texts(["photo"])[0]
    return {int(pk) for pk, _ in get_index().query(model_name(), vector, 100, where=to_chroma(where))}


def bulk(client, action: str, photos=(), **fields):
    data = {"action": action, "ids": [p.pk for p in photos], **fields}
    return client.post(reverse("gallery:bulk"), data, headers=HX)


def test_bulk_services_write_once_and_search_follows(photos, monkeypatch):
    calls = []
    index = get_index()
    original = type(index).upsert
    monkeypatch.setattr(type(index), "upsert", lambda self, *a, **k: (calls.append(len(a[1])), original(self, *a, **k)))
    assert tags_add(images=photos, names=["Beach", "summer"]) == 8
    assert calls == [8]  # one sync batch for the whole action
    assert tags_add(images=photos[:3], names=["beach"]) == 0
    assert found(tags="beach") == {p.pk for p in photos}
    assert tags_remove(images=photos[:5], names=["beach"]) == 5
    assert found(tags="beach") == {p.pk for p in photos[5:]} and found(tags="summer") == {p.pk for p in photos}
    # Chroma got the change as a metadata update (its vectors were unchanged): removed tags are gone there too.
    assert in_chroma(tags="beach") == {p.pk for p in photos[5:]} and in_chroma(tags="summer") == {p.pk for p in photos}
    assert category_set(images=photos[:2], category="Travel") == 2
    assert found(category="travel") == in_chroma(category="travel") == {p.pk for p in photos[:2]}
    assert set(Metadata.objects.filter(category="Travel").values_list("image_id", flat=True)) == {
        p.pk for p in photos[:2]
    }
    category_set(images=photos[:1], category="")  # a key Chroma must drop on update
    assert in_chroma(category="travel") == {photos[1].pk}


def test_the_bar_applies_each_action_to_the_selection(photos, editor_client):
    assert (
        "Tagged 3 photos with sea, sky."
        in bulk(editor_client, "tags_add", photos[:3], tags="Sea, sky").content.decode()
    )
    assert "Took sea off 1 photo." in bulk(editor_client, "tags_remove", photos[:1], tags="sea").content.decode()
    # What the action left alone is said, not just a count of 0 (2 photos were tagged "0 photos").
    assert (
        "Tagged 1 photo with sea, sky (2 photos already had them)."
        in bulk(editor_client, "tags_add", photos[:3], tags="sea, sky").content.decode()
    )
    assert (
        "Took sea off 0 photos (1 photo without it)."
        in bulk(editor_client, "tags_remove", photos[4:5], tags="sea").content.decode()
    )
    assert (
        "Set category “pets” on 2 photos."
        in bulk(editor_client, "category", photos[:2], category="pets").content.decode()
    )
    answer = bulk(editor_client, "album_add", photos[:4], new_album="Best of")
    assert "Added 4 photos to “Best of”." in answer.content.decode()
    album = Album.objects.get(name="Best of")
    again = bulk(editor_client, "album_add", photos[2:4], album_id=album.pk).content.decode()
    assert "Added 0 photos to “Best of” (2 photos already in it)." in again
    removed = bulk(editor_client, "album_remove", photos[:1], album_id=album.pk)
    assert removed.headers["HX-Trigger"] == "library-changed" and album.photos.count() == 3
    assert "Starred 2 photos." in bulk(editor_client, "favourite", photos[:2]).content.decode()
    assert found(album="best of") == {p.pk for p in photos[1:4]} and found(favourite_of="eddie") == {
        p.pk for p in photos[:2]
    }


def test_move_to_trash_is_undoable_and_the_undo_cannot_be_forged(photos, editor_client):
    moved = bulk(editor_client, "trash", photos[:3])
    html = moved.content.decode()
    assert "Moved 3 photos to the trash." in html and moved.headers["HX-Trigger"] == "library-changed"
    assert Image.objects.trashed().count() == 3 and found() == {p.pk for p in photos[3:]}
    token = re.search(r'"undo": "([^"]+)"', html).group(1)
    forged = editor_client.post(reverse("gallery:bulk"), {"action": "restore", "undo": token[:-3] + "abc"}, headers=HX)
    assert forged.status_code == 400 and "not valid" in forged.content.decode()
    restored = editor_client.post(reverse("gallery:bulk"), {"action": "restore", "undo": token}, headers=HX)
    assert "Restored 3 photos" in restored.content.decode() and not Image.objects.trashed().exists()
    assert found() == {p.pk for p in photos}


def test_all_matching_covers_photos_never_loaded(editor_client):
    from tests.factories import make_photos

    make_photos(70, category="scan")  # more than one gallery page (60)
    make_photos(5, category="other")
    answer = editor_client.post(
        reverse("gallery:bulk"),
        {"action": "tags_add", "all": "1", "query": "category=scan", "tags": "archive"},
        headers=HX,
    )
    assert "Tagged 70 photos with archive." in answer.content.decode()
    assert Metadata.objects.filter(tags__name="archive").count() == 70


def test_bad_requests_get_a_message_and_viewers_change_nothing(photos, editor_client, viewer):
    from django.test import Client

    viewer_client = Client()
    viewer_client.force_login(viewer)
    for fields, words in [
        ({"action": "explode", "ids": photos[0].pk}, "not one of the available choices"),
        ({"action": "tags_add", "ids": "abc", "tags": "x"}, "whole numbers"),
        ({"action": "tags_add", "ids": photos[0].pk}, "Type the tags first"),
        ({"action": "tags_add"}, "Select at least one photo"),
        ({"action": "tags_add", "all": "1", "query": "year=abc", "tags": "x"}, "filters of this page are not valid"),
        ({"action": "album_add", "ids": photos[0].pk}, "Choose an album"),
    ]:
        answer = editor_client.post(reverse("gallery:bulk"), fields, headers=HX)
        assert answer.status_code == 400 and words in answer.content.decode(), fields
    refused = bulk(viewer_client, "trash", photos[:2])
    assert refused.status_code == 403 and "Only editors can move to trash" in refused.content.decode()
    assert not Image.objects.trashed().exists()
    assert "Starred 1 photo." in bulk(viewer_client, "favourite", photos[:1]).content.decode()  # a star is one's own
    assert Favourite.objects.count() == 1


def test_download_streams_a_zip_of_the_originals_with_unique_names(tmp_path, ingest, viewer_client, settings):
    write_photo(tmp_path / "a" / "same.jpg", 1)
    write_photo(tmp_path / "b" / "same.jpg", 2)
    write_photo(tmp_path / "b" / "other.png", 3, fmt="PNG")
    ingest(tmp_path)
    photos = list(Image.objects.order_by("pk"))
    answer = viewer_client.post(reverse("gallery:bulk"), {"action": "download", "ids": [p.pk for p in photos]})
    assert answer.status_code == 200 and answer["Content-Type"] == "application/zip"
    body = b"".join(answer.streaming_content)
    assert int(answer["Content-Length"]) == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert sorted(archive.namelist()) == ["other.png", "same (2).jpg", "same.jpg"]
        originals = {
            p.original_name: (tmp_path / ("b" if p.pk != photos[0].pk else "a") / p.original_name) for p in photos
        }
        assert archive.read("other.png") == originals["other.png"].read_bytes()
    settings.IMGSIM_DOWNLOAD_MAX_MB = 0
    too_big = viewer_client.post(reverse("gallery:bulk"), {"action": "download", "ids": [p.pk for p in photos]})
    assert too_big.status_code == 302  # without JavaScript: back to the page, with the reason
    page = viewer_client.get(too_big.url).content.decode()
    assert "one download holds at most" in page and "Select fewer photos" in page


@pytest.mark.browser
@pytest.mark.parametrize("width, count_at_once", [(1280, 10_000), (390, 10)])
def test_selecting_and_acting_in_a_browser(
    browser, live_server, editor, tmp_path, ingest, width, count_at_once, monkeypatch
):
    """On the phone the grid counts its photos by a second request, as a large library's does."""
    from gallery import selectors

    monkeypatch.setattr(selectors, "COUNT_AT_ONCE", count_at_once)
    write_library(tmp_path / "in", 64, size=(96, 72))  # more than the first page of 60
    ingest(tmp_path / "in")
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    cards = page.locator("#grid .card-photo")
    if width > 800:  # with a mouse: the box a card shows on hover starts selection mode
        cards.nth(0).hover()
        cards.nth(0).locator("input.select-box").check()
        assert page.get_by_role("button", name="Done").is_visible()
    else:
        page.get_by_role("button", name="Select").click()
        cards.nth(0).locator("a").click()
    cards.nth(4).locator("a").click(modifiers=["Shift"])  # a range: cards 1 to 5
    assert page.locator("#bulk-form [data-count-of=ids]").inner_text() == "5"
    assert page.url.endswith("/")  # ticking, not opening photos
    page.get_by_label("Tags to add or remove").fill("harbour")
    page.get_by_role("button", name="Add tags").click()
    page.get_by_text("Tagged 5 photos with harbour.").wait_for()
    assert Metadata.objects.filter(tags__name="harbour").count() == 5
    if width < 800:
        fits(page, width)
    shot(page, f"bulk-{width}", docs=width > 800)

    page.get_by_label("select all 64 matching").check()
    assert page.locator("#bulk-form [data-count-of=ids]").inner_text() == "64"
    page.get_by_role("button", name="Add tags").click()
    page.get_by_text("Tagged 59 photos with harbour (5 photos already had it).").wait_for()
    assert Metadata.objects.filter(tags__name="harbour").count() == 64

    page.get_by_role("button", name="Clear").click()
    cards.nth(1).locator("a").click()
    cards.nth(2).locator("a").click()
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Move to trash").click()
    page.get_by_text("Moved 2 photos to the trash.").wait_for()
    assert questions == ["Move 2 photos to the trash? You can undo this."]
    page.wait_for_function("document.querySelector('#gallery-results h1 small').textContent.startsWith('62')")
    page.get_by_role("button", name="Undo").click()
    page.get_by_text("Restored 2 photos from the trash.").wait_for()
    page.wait_for_function("document.querySelector('#gallery-results h1 small').textContent.startsWith('64')")
    assert not Image.objects.trashed().exists()

    cards.nth(0).locator("a").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download zip").click()
    assert zipfile.ZipFile(download.value.path()).namelist() == [
        Image.objects.order_by("-added_at", "-id").first().original_name
    ]
    page.context.close()


@pytest.mark.browser
def test_search_results_can_be_selected_and_tagged(browser, live_server, editor, photos):
    page = login(browser, live_server, "eddie")
    page.goto("/search/?q=photo&threshold=-1")
    page.get_by_role("button", name="Select").click()
    page.get_by_label("all shown").check()
    assert page.locator("#bulk-form [data-count-of=ids]").inner_text() == "8"
    page.get_by_label("Tags to add or remove").fill("found")
    page.get_by_role("button", name="Add tags").click()
    page.get_by_text("Tagged 8 photos with found.").wait_for()
    assert Metadata.objects.filter(tags__name="found").count() == 8
    page.context.close()


@pytest.mark.parametrize(
    "action",
    [
        lambda photos, user: tags_add(images=photos, names=["x"]),
        lambda photos, user: tags_remove(images=photos, names=["seed"]),
        lambda photos, user: category_set(images=photos, category="y"),
        lambda photos, user: album_add(album=Album.objects.create(name="A"), images=photos),
        lambda photos, user: favourite_set(user=user, images=photos, on=True),
        lambda photos, user: image_trash(images=photos),
    ],
    ids=["tags_add", "tags_remove", "category", "album_add", "favourite", "trash"],
)
def test_a_bulk_action_that_fails_half_way_changes_nothing(action, photos, editor, monkeypatch):
    """Each action is one transaction: if recording the index work fails, the rows are rolled back too."""
    from gallery import services
    from search.models import IndexOutbox

    tags_add(images=photos, names=["seed"])
    before = snapshot()
    outbox = IndexOutbox.objects.count()

    def fail(image_ids):
        raise RuntimeError("the index work could not be recorded")

    monkeypatch.setattr(services, "_mirrored_change", fail)
    with pytest.raises(RuntimeError):
        action(photos, editor)
    assert snapshot() == before and IndexOutbox.objects.count() == outbox


def snapshot() -> tuple:
    from gallery.models import Album, Favourite

    return (
        sorted(Metadata.tags.through.objects.values_list("metadata_id", "tag__name")),
        sorted(Metadata.objects.values_list("image_id", "category")),
        sorted(Album.photos.through.objects.values_list("album__name", "image_id")),
        sorted(Favourite.objects.values_list("user_id", "image_id")),
        sorted(Image.objects.values_list("pk", "trashed_at")),
    )


def test_a_selection_of_thousands_of_ticked_photos_is_one_request(editor_client):
    # Rows made in bulk (no files, no vectors): more ticked ids than Django's default 1,000 fields.
    picked = photo_rows(2500, embedding_state=Image.Embedding.FAILED)
    Metadata.objects.bulk_create(Metadata(image=image) for image in picked)
    answer = bulk(editor_client, "category", picked, category="many")
    assert "Set category “many” on 2,500 photos." in answer.content.decode()


def test_unreadable_ids_get_one_message(editor_client):
    answer = editor_client.post(reverse("gallery:bulk"), {"action": "tags_add", "ids": "abc", "tags": "x"}, headers=HX)
    text = answer.content.decode()
    assert answer.status_code == 400 and "whole numbers" in text and "Select at least one" not in text
