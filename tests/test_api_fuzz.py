"""The JSON API never answers 500: generated JSON thrown at every endpoint gets a JSON 4xx (or the documented 503)."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from gallery import vectors as stored_vectors
from gallery.filters import FIELDS
from gallery.models import Image
from imgsim_site.tokens import token_create
from search.embeddings import get_embedder, model_name
from search.sync import sync_images
from tests.factories import make_photos

pytestmark = pytest.mark.django_db

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$and", "$or", "$like"]
FILTERS = st.recursive(
    st.dictionaries(st.sampled_from([*FIELDS, "colour"]), SCALARS | st.dictionaries(st.sampled_from(OPERATORS), JSON)),
    lambda inner: st.dictionaries(st.sampled_from(["$and", "$or"]), st.lists(inner, max_size=3), min_size=1),
    max_leaves=6,
)
KEYS = [
    "query",
    "image_id",
    "exclude",
    "top_k",
    "threshold",
    "filters",
    "title",
    "description",
    "category",
    "location",
    "tags",
]
BODIES = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), JSON | FILTERS, max_size=5)


@pytest.fixture
def api(client, editor):
    """An editor's token, and a few photos in the index for the searches to find."""
    dimension = get_embedder().dimension
    rng = np.random.default_rng(1)
    for photo in make_photos(5, category="travel"):
        Image.objects.filter(pk=photo.pk).update(embedding_state=Image.Embedding.DONE, embedding_model=model_name())
        vector = rng.normal(size=dimension)
        stored_vectors.save({photo.pk: (vector / np.linalg.norm(vector)).astype(np.float32)})
    sync_images(Image.objects.values_list("pk", flat=True))
    _, key = token_create(user=editor, name="fuzz")
    return client, {"Authorization": f"Bearer {key}"}, Image.objects.values_list("pk", flat=True).first()


def assert_answered(response) -> None:
    assert response.status_code < 500 or response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    if response.status_code >= 400:
        assert response.json()["error"]


FUZZ = hypothesis_settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=BODIES)
def test_search_and_edit_answer_every_json_body(api, body):
    client, auth, photo_id = api
    text = json.dumps(body)  # NaN and Infinity included, as JavaScript-ish clients send them
    assert_answered(client.post("/api/search", text, content_type="application/json", headers=auth))
    assert_answered(client.patch(f"/api/images/{photo_id}", text, content_type="application/json", headers=auth))


@FUZZ
@given(where=FILTERS, query=st.text(max_size=30))
def test_search_answers_every_filter(api, where, query):
    client, auth, _ = api
    body = json.dumps({"query": query or "photo", "filters": where, "threshold": -1})
    assert_answered(client.post("/api/search", body, content_type="application/json", headers=auth))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"{" * 100_000 + b"}" * 100_000,
        b'{"query": ["a", "list"]}',
        b'{"query": {"an": "object"}}',
        b'{"query": "x", "filters": {"year": Infinity}}',
        b'{"query": "x", "filters": {"year": 1e30}}',
        b'{"query": "x", "filters": {"width": {"$gt": -Infinity}}}',
        b'{"query": "x", "top_k": 1e400}',
        b'{"query": "x", "filters": ' + b'{"$and": [' * 500 + b'{"year": 2020}' + b"]}" * 500 + b"}",
        "\udcff".encode("utf-8", "surrogatepass"),
    ],
)
def test_odd_bodies_get_a_clear_400(api, body):
    client, auth, photo_id = api
    for response in (
        client.post("/api/search", body, content_type="application/json", headers=auth),
        client.patch(f"/api/images/{photo_id}", body, content_type="application/json", headers=auth),
    ):
        assert_answered(response)
        assert response.status_code == 400, response.content[:300]
