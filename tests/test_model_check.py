"""int8 is used only when allowed and after `manage.py check_model` passed on the library's own photos."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from search import model_check, paths
from search.embeddings import TransformersEmbedder, get_embedder
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def library(settings, tmp_path, ingest):
    settings.DATA_DIR = tmp_path
    report = ingest(write_library(tmp_path / "photos", 24)[0].parent)
    assert report.added == 24
    get_embedder.cache_clear()
    return tmp_path


def run_check(*args) -> str:
    out = io.StringIO()
    call_command("check_model", *args, stdout=out)
    return out.getvalue()


def test_a_path_with_the_same_output_agrees_fully(library):
    figures = json.loads(run_check("--path", "onnx", "--against", "fp32", "--json"))
    assert figures["photos"] == 24 and figures["k"] == 10 and figures["passed"]
    assert figures["image_to_image_recall"] == 1.0 and figures["text_to_image_recall"] == 1.0
    assert figures["image_cosine"] > 0.9999 and figures["text_cosine"] > 0.9999
    assert paths.int8_check(get_embedder().model_name) is None  # only int8 verdicts are kept


def test_int8_below_the_bar_is_refused_and_not_used(library, tiny_model, monkeypatch):
    monkeypatch.setattr(model_check, "MIN_RECALL", 1.01)  # no path can reach it
    with pytest.raises(CommandError, match="int8 does not pass"):
        run_check("--sample", "30")
    assert paths.int8_check(tiny_model)["passed"] is False
    forced = TransformersEmbedder(model=tiny_model, precision="int8")
    assert forced.precision == "image onnx, text onnx" and "not checked" in forced.paths["source"]
    allowed = TransformersEmbedder(model=tiny_model, precision="auto", allow_int8=True).paths
    assert "int8" not in allowed["image_measured"]["rates"]


def test_int8_that_passes_is_used_when_allowed(library, tiny_model, monkeypatch):
    monkeypatch.setattr(model_check, "MIN_RECALL", 0.0)
    text = run_check()
    assert "int8 passes" in text and "IMGSIM_ALLOW_INT8=1" in text and "recall@10 agreement" in text
    assert TransformersEmbedder(model=tiny_model, precision="int8").precision == "image int8, text int8"
    allowed = TransformersEmbedder(model=tiny_model, precision="auto", allow_int8=True).paths
    assert "int8" in allowed["image_measured"]["rates"] and "int8" in allowed["text_measured"]["rates"]
    not_allowed = TransformersEmbedder(model=tiny_model, precision="auto").paths
    assert "int8" not in not_allowed["image_measured"]["rates"]


def test_auto_judges_a_checked_int8_by_its_check(library, tiny_model, monkeypatch):
    """Allowed and checked, int8 wins where it is fastest though its probe cosine is under MIN_COSINE."""
    monkeypatch.setattr(model_check, "MIN_RECALL", 0.0)
    run_check()

    def measure(run_in, count):
        rates = {path: {"fp32": 20.0, "bf16": 30.0, "onnx": 25.0, "int8": 60.0}[path] for path in run_in}
        return {"rates": rates, "cosine": {path: 0.995 if path == "int8" else 1.0 for path in run_in}}

    monkeypatch.setattr(paths, "measure_tower", measure)
    allowed = TransformersEmbedder(model=tiny_model, precision="auto", allow_int8=True).paths
    assert (allowed["image"], allowed["text"]) == ("int8", "int8")


def test_a_small_library_cannot_be_checked(settings, tmp_path, ingest):
    settings.DATA_DIR = tmp_path
    ingest(write_library(tmp_path / "photos", 5)[0].parent)
    with pytest.raises(CommandError, match="at least 20 readable photos"):
        run_check()
