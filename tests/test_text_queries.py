"""A query text asked again is not encoded again (search.text_queries)."""

import numpy as np
import pytest

from search import text_queries
from search.embeddings import get_embedder
from search.python_api import find_similar
from tests.photos import write_library


@pytest.fixture
def calls(monkeypatch):
    """The texts each call to the model was given."""
    embedder, seen = get_embedder(), []
    encode = embedder.encode_texts

    def counted(texts, **options):
        seen.append(list(texts))
        return encode(texts, **options)

    monkeypatch.setattr(embedder, "encode_texts", counted)
    return seen


def test_a_text_is_encoded_once_and_gives_what_the_model_gives(calls):
    first = text_queries.encode(["a red boat", "a dog"])
    again = text_queries.encode(["a dog", "a red boat", "a dog"])
    assert calls == [["a red boat", "a dog"]]
    assert np.array_equal(again, first[[1, 0, 1]])
    assert np.allclose(first, get_embedder().encode_texts(["a red boat", "a dog"]), atol=1e-6)
    text_queries.encode(["a dog", "snow", "a cat", "snow"])
    assert calls[1:] == [["a red boat", "a dog"], ["snow", "a cat"]]  # only the new ones, once each, in one call


def test_a_remembered_vector_cannot_be_changed_by_a_caller():
    text_queries.encode(["harbour"])
    (vector,) = text_queries.encode(["harbour"])
    vector[:] = 0  # the caller's copy
    assert np.linalg.norm(text_queries.encode(["harbour"])[0]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.django_db(transaction=True)
def test_a_search_run_again_with_a_filter_or_a_negative_encodes_only_the_new_words(tmp_path, ingest, calls):
    ingest(write_library(tmp_path / "photos", 6)[0].parent)
    plain = find_similar(query_text="beach at dusk", top_k=6)
    filtered = find_similar(query_text="beach at dusk", top_k=6, filter_metadata={"category": "nature"})
    without = find_similar(query_text="beach at dusk", top_k=6, exclude_text="people")
    assert calls == [["beach at dusk"], ["people"]]
    assert len(plain) == 6 and {r["id"] for r in filtered} <= {r["id"] for r in plain} and len(without) == 6
