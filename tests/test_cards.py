"""The photo card and the star (gallery.cards): escaped as the template engine would, one card for every grid."""

import re

import pytest
from django.urls import reverse

from gallery.cards import photo_card, star_button, thumb_frame
from gallery.models import Image
from gallery.services import metadata_update
from tests.photos import write_library


def test_a_card_escapes_what_people_typed_and_keeps_its_numbers():
    card = str(
        photo_card(
            7,
            'Fête <script>alert("x")</script> & a very long title that goes on',
            similarity=0.31249,
            matched=["title", "<b>tags</b>"],
            query="q=cat&category=<i>",
            byte_size=1234,
        )
    )
    assert "<script>" not in card and "<b>" not in card and "<i>" not in card
    escaped = "Fête &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; a very long title that goes on"
    assert f'aria-label="Select {escaped}"' in card and f'alt="{escaped}"' in card
    assert (
        '<span class="caption">Fête &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; a ve… <span class="score"'
        in card
    )  # the first 40 characters, then escaped
    assert '<a href="/images/7/?q=cat&amp;category=&lt;i&gt;">' in card
    assert 'data-bytes="1234"' in card and 'id="card-7"' in card and 'value="7"' in card
    assert '<span class="score" title="similarity">0.312</span>' in card
    assert "matched: title, &lt;b&gt;tags&lt;/b&gt;" in card
    assert 'src="/images/7/thumb.img"' in card and 'width="320" height="320"' in card
    plain = str(photo_card(8, "b.jpg", similarity="", size=160))  # found by its words alone
    assert 'width="160"' in plain and "score" not in plain and "matched" not in plain and "data-bytes" not in plain
    assert '<a href="/images/8/">' in plain


def test_the_cards_star_is_the_same_for_everyone_and_a_pages_is_the_persons():
    on_card = str(star_button(3, card=True))
    assert " hidden " in on_card and "data-known" not in on_card and 'aria-pressed="false"' in on_card
    assert 'hx-post="/images/3/favourite/"' in on_card and 'type="button"' in on_card
    mine = str(star_button(3, starred=True))
    assert "data-known" in mine and "hidden" not in mine and 'aria-pressed="true"' in mine and 'value="0"' in mine
    in_form = str(star_button(3, in_form=True))  # the form around it posts: it works without JavaScript
    assert "hx-post" not in in_form and 'type="button"' not in in_form and 'value="1"' in in_form


@pytest.mark.django_db(transaction=True)
def test_every_grid_shows_the_same_card_with_the_link_of_its_list(
    tmp_path, ingest, editor_client, django_capture_on_commit_callbacks
):
    write_library(tmp_path / "in", 4)
    ingest(tmp_path / "in")
    photo = Image.objects.order_by("pk").first()
    with django_capture_on_commit_callbacks(execute=True):
        metadata_update(image=photo, fields={"title": 'Harbour <at> "dawn"', "category": "travel"})

    def card_of(html: str) -> str:
        return re.search(rf'<li class="card-photo" id="card-{photo.pk}">.*?</li>', html, re.S).group(0)

    gallery = card_of(editor_client.get(reverse("gallery:index"), {"category": "travel"}).content.decode())
    assert f'<a href="/images/{photo.pk}/?category=travel">' in gallery  # the photo page walks the filtered grid
    assert "Harbour &lt;at&gt; &quot;dawn&quot;" in gallery and f'data-bytes="{photo.byte_size}"' in gallery
    search = editor_client.get(reverse("search:page"), {"q": "harbour", "threshold": -1}).content.decode()
    found = card_of(search)
    link = re.search(r'<a href="([^"]*)">', found).group(1)
    assert link.startswith(f"/images/{photo.pk}/?") and "q=harbour" in link and "in=search" in link, link
    assert 'class="score"' in found
    assert "matched: title" in found
    similar = editor_client.get(reverse("search:similar", args=[Image.objects.order_by("pk").last().pk]))
    assert 'width="160"' in card_of(similar.content.decode())


@pytest.mark.django_db(transaction=True)
def test_the_trash_shows_the_thumbnail_frame_of_the_cards_sized_as_the_thumbnail(tmp_path, ingest, editor_client):
    from gallery.services import image_trash
    from gallery.storage import RENDITIONS

    write_library(tmp_path / "in", 2)
    ingest(tmp_path / "in")
    photo = Image.objects.order_by("pk").first()
    Image.objects.filter(pk=photo.pk).update(original_name='<b>odd</b> "name".jpg')
    photo.refresh_from_db()
    image_trash(images=[photo])
    html = editor_client.get(reverse("gallery:trash")).content.decode()
    edge = RENDITIONS["thumb"][0]
    frame = str(thumb_frame(photo.pk, photo.original_name))
    assert frame in html and "<b>odd</b>" not in html
    assert 'alt="&lt;b&gt;odd&lt;/b&gt; &quot;name&quot;.jpg"' in frame and f'width="{edge}" height="{edge}"' in frame
    assert frame in str(photo_card(photo.pk, photo.original_name))  # the grid's card holds the same frame
