"""No click loses a photo, proven in a real Chromium: review groups, confirmations, undo, the trash."""

import re

import pytest

from gallery import storage
from gallery.models import Image
from gallery.services import image_trash
from search.models import DuplicatePair, NotDuplicate
from tests.browser import fits, login, shot
from tests.photos import write_library, write_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def photos_named(ingest, folder, sizes: dict[str, tuple[int, int]]) -> dict[str, Image]:
    for seed, (name, size) in enumerate(sizes.items()):
        write_photo(folder / name, seed + 40, size=size)
    ingest(folder)
    return {image.original_name: image for image in Image.objects.all()}


def pair(first: Image, second: Image, tier: str, similarity: float, hamming: int | None = None) -> None:
    a, b = sorted((first.pk, second.pk))
    DuplicatePair.objects.create(image_a_id=a, image_b_id=b, tier=tier, similarity=similarity, hamming=hamming)


def posts_to(page, fragment: str) -> list[str]:
    """Record the POST requests the page sends to URLs containing fragment."""
    seen: list[str] = []
    page.on(
        "request",
        lambda request: seen.append(request.url) if request.method == "POST" and fragment in request.url else None,
    )
    return seen


def test_a_chain_never_shows_its_ends_in_one_group(browser, live_server, editor, tmp_path, ingest):
    photos = photos_named(ingest, tmp_path / "in", {"a.jpg": (900, 700), "b.jpg": (700, 500), "c.jpg": (500, 400)})
    pair(photos["a.jpg"], photos["b.jpg"], "near", 0.97, 18)
    pair(photos["b.jpg"], photos["c.jpg"], "near", 0.97, 18)
    page = login(browser, live_server, "eddie")
    page.goto("/duplicates/")
    groups = page.locator("section.group")
    assert groups.count() == 1
    text = groups.first.inner_text()
    assert "a.jpg" in text and "b.jpg" in text and "c.jpg" not in text
    shot(page, "duplicates-chain")
    fits(page, 390)
    shot(page, "duplicates-phone")
    page.context.close()


def test_a_review_click_trashes_exactly_the_ticked_members_and_undo_brings_them_back(
    browser, live_server, editor, tmp_path, ingest
):
    photos = photos_named(
        ingest,
        tmp_path / "in",
        {"keep.jpg": (1000, 800), "copy.jpg": (1000, 800), "burst.jpg": (640, 480), "resized.jpg": (500, 400)},
    )
    keeper = photos["keep.jpg"]
    pair(keeper, photos["copy.jpg"], "exact", 1.0, 0)
    pair(keeper, photos["burst.jpg"], "similar", 0.96)
    pair(keeper, photos["resized.jpg"], "near", 0.99, 3)
    page = login(browser, live_server, "eddie")
    page.goto("/duplicates/")
    box = {name: page.locator(f'input[name=trash][value="{photos[name].pk}"]') for name in photos}
    assert box["copy.jpg"].is_checked() and box["resized.jpg"].is_checked() and not box["burst.jpg"].is_checked()
    assert box["keep.jpg"].is_disabled()  # the keeper cannot go to the trash
    box["burst.jpg"].check()
    box["resized.jpg"].uncheck()
    assert page.locator('[data-count-of="trash"]').inner_text() == "2"
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.click("button[value=keep]")
    page.wait_for_selector(".resolved")
    assert re.match(r"Move 2 photos \([\d.]+ KB\) to the trash\? Undo brings them back\.", questions[0])
    assert set(Image.objects.trashed().values_list("original_name", flat=True)) == {"copy.jpg", "burst.jpg"}
    assert page.locator("#nav-trash-count").inner_text() == "2"  # the header followed (out-of-band swap)
    shot(page, "duplicates-resolved")
    page.click(".resolved button:has-text('Undo')")
    page.wait_for_selector("text=Undone: 2 photos restored from the trash.")
    assert not Image.objects.trashed().exists() and not NotDuplicate.objects.exists()
    assert page.locator("section.group").count() == 1
    page.context.close()


def test_delete_for_good_shows_a_dialog_and_dismissing_it_deletes_nothing(
    browser, live_server, editor, tmp_path, ingest
):
    write_library(tmp_path / "in", 3, size=(96, 72))
    ingest(tmp_path / "in")
    image_trash(images=list(Image.objects.all()))
    page = login(browser, live_server, "eddie")
    page.goto("/trash/")
    deletes = posts_to(page, "/trash/delete/")
    page.locator(".selectable input[name=ids]").first.check()
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("button:has-text('Delete selected for good')")
    assert re.match(r"Delete 1 photo \([\d.]+ KB\) for good\? This cannot be undone\.", questions[0])
    page.reload()  # anything the click had sent would have arrived before this page
    assert deletes == [] and Image.objects.trashed().count() == 3
    page.locator(".selectable input[name=ids]").first.check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Delete selected for good')")
    page.wait_for_selector("text=Deleted 1 photo for good.")
    assert len(deletes) == 1 and Image.objects.count() == 2
    fits(page, 390)
    shot(page, "trash-phone")
    page.context.close()


def test_restoring_fifty_photos_is_one_action(browser, live_server, editor, tmp_path, ingest):
    write_library(tmp_path / "in", 52, size=(64, 48))
    ingest(tmp_path / "in", batch_size=52)
    image_trash(images=list(Image.objects.order_by("pk")[:50]))
    page = login(browser, live_server, "eddie")
    page.click("nav >> text=Trash")
    page.wait_for_url("**/trash/")  # the gallery it leaves has a select-all box too
    assert page.locator("#nav-trash-count").inner_text() == "50"
    restores = posts_to(page, "/trash/restore/")
    page.check("input[data-select-all]")
    assert page.locator('[data-count-of="ids"]').inner_text() == "50"
    shot(page, "trash")
    page.click("button:has-text('Restore selected')")
    page.wait_for_selector("text=Restored 50 photos to the library.")
    assert len(restores) == 1 and not Image.objects.trashed().exists()
    assert page.locator("#nav-trash-count").inner_text() == "0"
    page.context.close()


def test_photo_page_and_admin_delete_both_land_in_the_trash(browser, live_server, admin_user, tmp_path, ingest):
    write_library(tmp_path / "in", 2, size=(96, 72))
    ingest(tmp_path / "in")
    first, second = Image.objects.order_by("pk")
    page = login(browser, live_server, "root")
    page.goto(f"/images/{first.pk}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Move to trash')")
    page.wait_for_selector("text=is in the trash")
    assert Image.objects.trashed().get() == first
    page.click("#photo-actions button:has-text('Undo')")
    page.wait_for_url(re.compile(rf"/images/{first.pk}/$"))
    assert not Image.objects.trashed().exists()

    page.goto(f"/admin/gallery/image/{second.pk}/change/")
    page.click("a.deletelink")
    page.click("input[value='Move to the trash']")
    page.wait_for_selector("text=was moved to the trash")
    second.refresh_from_db()
    assert second.is_trashed and storage.original_path(second).exists()
    page.context.close()


def test_a_viewer_gets_404_for_a_trashed_photos_files(browser, live_server, viewer, tmp_path, ingest):
    write_library(tmp_path / "in", 1, size=(96, 72))
    ingest(tmp_path / "in")
    photo = Image.objects.get()
    urls = [f"/images/{photo.pk}/original", f"/images/{photo.pk}/preview.img", f"/images/{photo.pk}/thumb.img"]
    page = login(browser, live_server, "vera")
    # page.request shares the session but not the browser's cache: what the server answers now.
    assert [page.request.get(url).status for url in urls] == [200, 200, 200]
    image_trash(images=[photo])
    assert [page.request.get(url).status for url in urls] == [404, 404, 404]
    page.context.close()
    page = login(browser, live_server, "vera")  # a browser that had not cached them
    assert [page.goto(url).status for url in urls] == [404, 404, 404]
    page.context.close()


def test_every_page_runs_under_the_content_security_policy(browser, live_server, admin_user, tmp_path, ingest):
    write_library(tmp_path / "in", 2, size=(96, 72))
    ingest(tmp_path / "in")
    photo = Image.objects.first()
    page = login(browser, live_server, "root", enforce_csp=True)
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    for url in (
        "/",
        f"/images/{photo.pk}/",
        "/search/?q=photo",
        "/stats/",
        "/duplicates/",
        "/trash/",
        "/upload/",
        "/profile/",
        "/admin/gallery/image/",
        f"/admin/gallery/image/{photo.pk}/change/",
    ):
        response = page.goto(url)
        assert "script-src 'self'" in response.headers["content-security-policy"], url
        page.wait_for_load_state("networkidle")
    page.goto(f"/images/{photo.pk}/")
    page.wait_for_selector("#similar-strip")  # htmx works under the policy
    assert violations == []
    page.context.close()
