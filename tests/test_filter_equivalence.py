"""One filter language: the gallery, the search page, the JSON API and the Python API select the same photos."""

import re
from datetime import UTC, date, datetime

import numpy as np
import pytest
from django.urls import reverse

from gallery import vectors as stored_vectors
from gallery.filters import FilterForm
from gallery.models import Image, Tag
from gallery.services import album_add, album_create
from search.embeddings import get_embedder, model_name
from search.python_api import find_similar
from search.sync import sync_images
from tests.factories import make_photo

pytestmark = pytest.mark.django_db

CATEGORIES = ["Landscape", "landscape", "Street", "", "street"]
CAMERAS = [("Canon", "Canon EOS R5"), ("NIKON CORPORATION", "NIKON Z 6"), ("", "")]
TAGS = [["sea"], ["snow", "sea"], [], ["city"]]


@pytest.fixture
def library():
    """20 photos with varied metadata and vectors, in the index (rows made directly: no decoding needed)."""
    rng = np.random.default_rng(5)
    dimension = get_embedder().dimension
    tags = {name: Tag.objects.create(name=name) for name in ("sea", "snow", "city")}
    photos = []
    for i in range(20):
        make, model = CAMERAS[i % 3]
        photo = make_photo(
            width=[64, 200, 1200, 4000][i % 4],
            height=300,
            category=CATEGORIES[i % 5],
            camera_make=make,
            camera_model=model,
            taken_at=datetime(2016 + i % 5, 1 + i % 12, 10, tzinfo=UTC) if i % 6 else None,
            latitude=46.5 if i % 2 else None,
            longitude=7.9 if i % 2 else None,
        )
        photo.format = "PNG" if i % 4 == 1 else "JPEG"
        photo.embedding_state, photo.embedding_model = Image.Embedding.DONE, model_name()
        photo.save()
        photo.metadata.tags.set([tags[name] for name in TAGS[i % 4]])
        vector = rng.normal(size=dimension)
        stored_vectors.save({photo.pk: (vector / np.linalg.norm(vector)).astype(np.float32)})
        photos.append(photo)
    album_add(album=album_create(name="Holidays"), images=photos[::3])
    album_add(album=album_create(name="Work"), images=photos[1::4])
    sync_images([photo.pk for photo in photos])
    return photos


def taken(photo) -> date | None:
    return photo.metadata.taken_at.date() if photo.metadata.taken_at else None


# Each sidebar filter (as the URL carries it) and, independently, which photos it should select.
CASES = {
    "category any case": ({"category": "LANDSCAPE"}, lambda p: p.metadata.category.lower() == "landscape"),
    "category": ({"category": "street"}, lambda p: p.metadata.category.lower() == "street"),
    "one tag": ({"tag": "Sea"}, lambda p: p.metadata.tags.filter(name="sea").exists()),
    "any of two tags": ({"tag": "snow, city"}, lambda p: p.metadata.tags.filter(name__in=["snow", "city"]).exists()),
    "album any case": ({"album": "HOLIDAYS"}, lambda p: p.albums.filter(name="Holidays").exists()),
    "album and a tag": (
        {"album": "Work", "tag": "sea"},
        lambda p: p.albums.filter(name="Work").exists() and p.metadata.tags.filter(name="sea").exists(),
    ),
    "camera make": ({"camera": "canon"}, lambda p: p.metadata.camera_make == "Canon"),
    "camera model": ({"camera": "nikon z 6"}, lambda p: p.metadata.camera_model == "NIKON Z 6"),
    "year": ({"year": 2018}, lambda p: taken(p) is not None and taken(p).year == 2018),
    "date range": (
        {"taken_from": "2017-03-10", "taken_to": "2018-05-10"},
        lambda p: taken(p) is not None and date(2017, 3, 10) <= taken(p) <= date(2018, 5, 10),
    ),
    "with GPS": ({"has_gps": "true"}, lambda p: p.metadata.latitude is not None),
    "without GPS": ({"has_gps": "false"}, lambda p: p.metadata.latitude is None),
    "format": ({"format": "PNG"}, lambda p: p.format == "PNG"),
    "minimum width": ({"min_width": 1000}, lambda p: p.width >= 1000),
    "two at once": (
        {"category": "Street", "has_gps": "true"},
        lambda p: p.metadata.category.lower() == "street" and p.metadata.latitude is not None,
    ),
}


def card_ids(html: str, container: str) -> set[int]:
    section = html.split(f'id="{container}"', 1)[1]
    return {int(pk) for pk in re.findall(r'href="/images/(\d+)/', section)}


@pytest.mark.parametrize("case", CASES)
def test_every_entry_point_selects_the_same_photos(case, library, viewer_client):
    params, selects = CASES[case]
    expected = {photo.pk for photo in library if selects(photo)}
    assert expected and len(expected) < len(library), "the case must tell photos apart"
    form = FilterForm(params)
    assert form.is_valid(), form.errors
    where = form.to_where()
    query = {"q": "photo", "threshold": -1, "top_k": 200}

    gallery = card_ids(viewer_client.get(reverse("gallery:index"), params).content.decode(), "grid")
    search_page = card_ids(viewer_client.get(reverse("search:page"), {**query, **params}).content.decode(), "results")
    json_api = {
        result["id"]
        for result in viewer_client.post(
            reverse("api:search"),
            {"query": "photo", "threshold": -1, "top_k": 200, "filters": where},
            content_type="application/json",
        ).json()["results"]
    }
    python_api = {
        result["id"] for result in find_similar(query_text="photo", threshold=-1, top_k=200, filter_metadata=where)
    }
    assert gallery == expected
    assert search_page == expected
    assert json_api == expected
    assert python_api == expected
