"""The photo page: the list it was opened from (search results, an album, the gallery), full size, shortcuts."""

import re

import pytest
from django.urls import reverse

from gallery.models import Favourite, Image
from gallery.services import album_add, album_create
from tests.browser import fits, login, shot
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def photos(tmp_path, ingest) -> list[Image]:
    write_library(tmp_path / "in", 6, size=(320, 240))
    ingest(tmp_path / "in")
    return list(Image.objects.order_by("pk"))


def links(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}"[^>]*href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_a_photo_opened_from_search_results_walks_them_and_leads_back(photos, viewer_client):
    results = viewer_client.get(reverse("search:page"), {"q": "photo", "threshold": -1, "top_k": 4}).content.decode()
    opened = re.findall(r'href="(/images/(\d+)/\?in=search[^"]*)"', results)
    order = [int(pk) for _, pk in opened]
    assert len(order) == 4
    second = viewer_client.get(opened[1][0].replace("&amp;", "&")).content.decode()
    assert links(second, "prev").startswith(f"/images/{order[0]}/?in=search")
    assert links(second, "next").startswith(f"/images/{order[2]}/?in=search")
    back = re.search(r'href="([^"]+)" data-shortcut="Backspace">← Results', second).group(1).replace("&amp;", "&")
    assert back.startswith("/search/?q=photo") and back.endswith(f"#card-{order[1]}") and "in=search" not in back
    last = viewer_client.get(opened[3][0].replace("&amp;", "&")).content.decode()
    assert links(last, "next") is None  # the results end there, not the library


def test_a_photo_opened_from_an_album_walks_the_album(photos, viewer_client):
    album = album_create(name="Walk")
    album_add(album=album, images=[photos[1], photos[3], photos[5]])
    grid = viewer_client.get(reverse("gallery:album", args=[album.pk])).content.decode()
    first = re.search(rf'href="(/images/{photos[5].pk}/\?[^"]+)"', grid).group(1).replace("&amp;", "&")
    page = viewer_client.get(first).content.decode()
    assert links(page, "next").startswith(f"/images/{photos[3].pk}/") and links(page, "prev") is None
    assert f'href="/albums/{album.pk}/?#card-{photos[5].pk}"' in page and "← Walk" in page


def test_download_original_is_an_attachment(photos, viewer_client):
    url = reverse("gallery:original", args=[photos[0].pk])
    assert viewer_client.get(url)["Content-Disposition"].startswith("inline")
    assert viewer_client.get(url, {"download": "1"})["Content-Disposition"] == 'attachment; filename="photo_0000.jpg"'


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_full_size_and_keyboard_shortcuts(browser, live_server, editor, photos, width):
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    page.locator(f"#card-{photos[4].pk} a").click()
    page.wait_for_url(f"**/images/{photos[4].pk}/*")
    page.locator("[data-lightbox]").click()
    lightbox = page.locator("#lightbox")
    lightbox.locator("img").wait_for()
    assert page.evaluate("document.getElementById('lightbox').open")
    assert lightbox.locator("img").get_attribute("src") == f"/images/{photos[4].pk}/original"
    page.wait_for_function("document.querySelector('#lightbox img').naturalWidth === 320")  # the original loaded
    if width < 800:
        fits(page, width)
    shot(page, f"photo-full-{width}", docs=width > 800)
    page.keyboard.press("ArrowRight")  # the next photo of the gallery, still full size
    page.wait_for_url(f"**/images/{photos[3].pk}/*#full")
    page.wait_for_function("document.getElementById('lightbox').open")
    page.keyboard.press("Escape")
    page.wait_for_function("!document.getElementById('lightbox').open")
    page.keyboard.press("s")
    page.wait_for_selector('.title-row .star[aria-pressed="true"]')
    assert Favourite.objects.filter(image=photos[3]).exists()
    page.keyboard.press("?")
    page.get_by_role("heading", name="Keyboard shortcuts").wait_for()
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.get_by_label("Title").wait_for()
    page.get_by_label("Title").press("Escape")
    page.get_by_role("link", name="Edit details").wait_for()
    page.keyboard.press("Backspace")
    page.wait_for_url(f"**/?#card-{photos[3].pk}")
    page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_tiny_photos_and_panoramas_are_shown_at_a_usable_size(browser, live_server, editor, tmp_path, ingest, width):
    from PIL import Image as PILImage

    folder = tmp_path / "odd"
    folder.mkdir()
    PILImage.new("RGB", (1, 1), (200, 30, 30)).save(folder / "dot.png")
    strip = PILImage.linear_gradient("L").resize((6000, 150)).convert("RGB")
    strip.save(folder / "strip.jpg", quality=85)
    PILImage.linear_gradient("L").resize((900, 1600)).convert("RGB").save(folder / "tall.jpg", quality=85)
    ingest(folder)
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 900})
    for name, shape in (("dot.png", "tiny"), ("strip.jpg", "panorama")):
        photo = Image.objects.get(original_name=name)
        assert photo.shape == shape
        page.goto(f"/images/{photo.pk}/")
        image = page.locator(".preview img")
        image.wait_for()
        page.wait_for_function("document.querySelector('.preview img').complete")
        box = image.bounding_box()
        assert box["height"] >= 200, (name, box)  # fitted, they were 1 px and 22 px high
        if shape == "tiny":
            assert box["width"] >= 200
        else:  # wider than the screen: it scrolls inside its frame, the page does not
            assert box["width"] > width
            fits(page, width)
        shot(page, f"photo-{shape}-{width}")
    # A portrait taller than the window is shown whole and in its own proportions, not squeezed.
    page.goto(f"/images/{Image.objects.get(original_name='tall.jpg').pk}/")
    page.wait_for_function("document.querySelector('.preview img').complete")
    box = page.locator(".preview img").bounding_box()
    assert box["height"] <= 900 * 0.8 + 1 and box["width"] <= width, box
    assert box["width"] / box["height"] == pytest.approx(900 / 1600, rel=0.02), box
    page.context.close()
