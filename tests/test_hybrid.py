"""Search that reads words too: full-text search over what the team wrote, fused with CLIP's ranking."""

import re
from html import unescape

import pytest
from django.http import QueryDict
from django.urls import reverse

from gallery.models import Image, Tag
from gallery.services import category_set, image_trash, metadata_update, tags_add
from gallery.words import matching_ids, refresh
from search.hybrid import search_words_and_meaning
from search.python_api import find_similar
from tests.browser import fits, login, shot
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def photos(tmp_path, ingest) -> list[Image]:
    write_library(tmp_path / "in", 12, size=(160, 120))
    ingest(tmp_path / "in")
    return list(Image.objects.order_by("pk"))


def ids(results) -> list[int]:
    return [result["id"] for result in results]


def page_ids(html: str) -> list[int]:
    section = html.split('id="results"', 1)[1].split('class="grid"', 1)[-1]
    return [int(pk) for pk in re.findall(r'href="/images/(\d+)/', section)]


def test_a_caption_ranks_first_and_says_why(photos):
    target = photos[7]
    metadata_update(image=target, fields={"title": "Eileen Collins at Kennedy"})
    clip_only = ids(find_similar(query_text="Eileen Collins", top_k=12, threshold=-1))
    assert clip_only[0] != target.pk  # CLIP alone (random weights here) would not find it first
    results = search_words_and_meaning(query_text="eileen collins", top_k=12, threshold=-1)
    assert results[0]["id"] == target.pk and results[0]["matched"] == ["title"]
    assert "matched" not in results[1]
    assert sorted(ids(results)) == sorted(p.pk for p in photos)  # the rest still come, by meaning


def test_without_matching_words_the_order_is_clips(photos):
    assert ids(search_words_and_meaning(query_text="cat on a sofa", top_k=5, threshold=-1)) == ids(
        find_similar(query_text="cat on a sofa", top_k=5, threshold=-1)
    )


def test_quotes_ask_for_the_words_only_as_a_phrase(photos):
    metadata_update(image=photos[2], fields={"description": "Eileen Collins waves"})
    metadata_update(image=photos[3], fields={"description": "Collins, not Eileen"})
    assert ids(search_words_and_meaning(query_text='"Eileen Collins"', top_k=12)) == [photos[2].pk]
    assert sorted(matching_ids("collins eileen")) == sorted([photos[2].pk, photos[3].pk])


def test_words_follow_every_kind_of_change(photos):
    tags_add(images=photos[:3], names=["harbour"])
    assert sorted(matching_ids("harbour")) == [p.pk for p in photos[:3]]
    Tag.objects.filter(name="harbour").update(name="port")  # a rename without signals is not seen...
    tag = Tag.objects.get(name="port")
    tag.save()  # ...a rename through the model is
    assert sorted(matching_ids("port")) == [p.pk for p in photos[:3]] and matching_ids("harbour") == []
    category_set(images=photos[5:7], category="Zürich trip")
    assert sorted(matching_ids("zurich")) == [p.pk for p in photos[5:7]]  # accents and case fold
    image_trash(images=[photos[5]])
    assert matching_ids("zurich") == [photos[6].pk] == matching_ids("ZÜRICH")
    Tag.objects.get(name="port").delete()
    assert matching_ids("port") == []
    assert matching_ids("photo_0004")[:1] == [photos[4].pk]  # the file name is words too


def test_a_new_photos_words_are_written_with_it_as_a_refresh_would(tmp_path, ingest):
    write_library(tmp_path / "in", 3, size=(160, 120))
    ingest(tmp_path / "in", tags=["Harbour", "boats"], category="Zürich trip")
    write_library(tmp_path / "more", 2, start=10, size=(120, 160))
    ingest(tmp_path / "more")
    for image in Image.objects.select_related("metadata"):
        written = image.metadata.search_text
        refresh([image.pk])
        image.metadata.refresh_from_db()
        assert written and image.metadata.search_text == written
    tagged = sorted(Image.objects.filter(metadata__tags__name="harbour").values_list("pk", flat=True))
    assert len(tagged) == 3 and sorted(matching_ids("zurich boats")) == tagged
    untagged = Image.objects.get(original_name="photo_0010.jpg")
    assert matching_ids("photo 0010") == [untagged.pk] and untagged.metadata.search_text


def test_filters_apply_to_word_matches(photos):
    metadata_update(image=photos[1], fields={"title": "Red boat", "category": "sea"})
    metadata_update(image=photos[2], fields={"title": "Red boat", "category": "land"})
    results = search_words_and_meaning(
        query_text="red boat", top_k=12, threshold=-1, filter_metadata={"category": "land"}
    )
    assert photos[1].pk not in ids(results) and ids(results)[0] == photos[2].pk


def test_the_page_fuses_refines_and_takes_several_negatives(photos, viewer_client):
    metadata_update(image=photos[9], fields={"location": "Lisbon harbour"})
    html = viewer_client.get(reverse("search:page"), {"q": "lisbon", "threshold": -1}).content.decode()
    assert page_ids(html)[0] == photos[9].pk and "matched: location" in html
    html = viewer_client.get(reverse("search:page"), {"q": "beach -people -cars", "threshold": -1}).content.decode()
    assert "not: people" in html and "not: cars" in html
    # Each "not" chip removes its own term, from the query or from the Not field.
    chips = viewer_client.get(reverse("search:page"), {"q": "beach -people", "exclude": "cars, dogs"}).content.decode()
    links = dict(re.findall(r'<a class="chip negative" href="\?([^"]+)" aria-label="Remove not: (\w+)"', chips))
    assert {term: QueryDict(unescape(link)) for link, term in links.items()} == {
        "people": QueryDict("q=beach&exclude=cars, dogs"),
        "cars": QueryDict("q=beach -people&exclude=dogs"),
        "dogs": QueryDict("q=beach -people&exclude=cars"),
    }
    expected = ids(find_similar(query_text="beach", exclude_text=["people", "cars"], top_k=24, threshold=-1))
    assert page_ids(html) == expected
    assert expected != ids(find_similar(query_text="beach", exclude_text="people cars", top_k=24, threshold=-1))
    like = viewer_client.get(reverse("search:page"), {"like": photos[0].pk, "threshold": -1}).content.decode()
    refined = viewer_client.get(reverse("search:page"), {"like": photos[0].pk, "q": "night", "threshold": -1})
    expected = ids(find_similar(query_image_id=photos[0].pk, refine_text="night", top_k=24, threshold=-1))
    assert page_ids(refined.content.decode()) == expected != page_ids(like)


def test_the_json_api_fuses_too(photos, viewer_client):
    metadata_update(image=photos[4], fields={"title": "Sunset over Porto"})
    answer = viewer_client.post(
        reverse("api:search"), {"query": "porto", "threshold": -1}, content_type="application/json"
    ).json()
    assert answer["results"][0]["id"] == photos[4].pk and answer["results"][0]["matched"] == ["title"]


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_a_caption_typed_in_the_editor_is_found_by_search(browser, live_server, editor, photos, width):
    page = login(browser, live_server, "eddie")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/images/{photos[6].pk}/")
    page.get_by_role("link", name="Edit details").click()
    page.get_by_label("Title").fill("Eileen Collins")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    page.goto("/search/")
    page.get_by_label("Describe the photo").fill("eileen collins")
    page.locator("#results .card-photo").first.wait_for()
    page.wait_for_function("document.querySelector('#results .card-photo .matched') !== null")
    first = page.locator("#results .card-photo").first
    assert first.locator("a").get_attribute("href").startswith(f"/images/{photos[6].pk}/")
    assert "matched: title" in first.inner_text()
    if width < 800:
        fits(page, width)
    shot(page, f"search-words-{width}", docs=width > 800)
    page.context.close()
