import numpy as np
import pytest

from gallery.models import Image
from search.api import find_similar
from tests.photos import write_library


@pytest.mark.django_db(transaction=True)
def test_end_to_end(tmp_path, ingest):
    write_library(tmp_path / "in", 5)
    report = ingest(tmp_path / "in")
    print(report.outcomes, report.model_error)
    assert report.added == 5
    assert Image.objects.filter(embedding_state="done").count() == 5
    results = find_similar(query_text="a cat on a sofa", top_k=3)
    print(results[0])
    assert len(results) == 3
    first = Image.objects.first()
    results = find_similar(query_image_id=first.pk, top_k=10)
    assert len(results) == 4
