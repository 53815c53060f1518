import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image as PILImage

from search.embeddings import ClipEmbedder, get_embedder
from search.errors import ModelUnavailable
from tests.conftest import ROOT
from tests.photos import photo_image


def test_tiny_model_loads_through_the_real_path_and_gives_unit_vectors(tiny_model):
    embedder = get_embedder()
    assert not embedder.loaded  # lazy: nothing loaded until first use
    texts = embedder.encode_texts(["a cat on a sofa", "red car at night", ""])
    images = embedder.encode_images([photo_image(1), photo_image(2, size=(200, 500)), PILImage.new("L", (40, 30))])
    assert embedder.loaded and embedder.model_name == tiny_model
    for vectors in (texts, images):
        assert vectors.dtype == np.float32 and vectors.shape == (3, 32)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(texts[0], texts[1])


def test_batching_does_not_change_vectors(tiny_model):
    small_batches = ClipEmbedder(model=tiny_model, precision="fp32", batch_size=2)
    one_batch = ClipEmbedder(model=tiny_model, precision="fp32", batch_size=64)
    images = [photo_image(seed) for seed in range(5)]
    assert np.allclose(small_batches.encode_images(images), one_batch.encode_images(images), atol=1e-5)
    texts = ["beach", "snow mountain", "a dog", "city street at night", "flower"]
    assert np.allclose(small_batches.encode_texts(texts), one_batch.encode_texts(texts), atol=1e-5)


def test_bf16_stays_close_to_fp32(tiny_model):
    fp32 = ClipEmbedder(model=tiny_model, precision="fp32")
    bf16 = ClipEmbedder(model=tiny_model, precision="bf16")
    assert bf16.precision == "bf16" and fp32.precision == "fp32"
    images = [photo_image(seed) for seed in range(4)]
    cosine = np.sum(fp32.encode_images(images) * bf16.encode_images(images), axis=1)
    assert cosine.min() > 0.99  # the full-size model measures > 0.999 (bench/search.py)


@pytest.mark.parametrize(
    "avx512_bf16, amx, expected",
    [
        (False, False, "fp32"),  # AVX2, or AVX-512 without BF16: emulated bf16 is slower than fp32
        (True, False, "bf16"),
        (False, True, "bf16"),
    ],
)
def test_auto_precision_uses_bf16_only_where_the_cpu_has_it(tiny_model, monkeypatch, avx512_bf16, amx, expected):
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert ClipEmbedder(model=tiny_model, precision="auto").precision == expected
    assert ClipEmbedder(model=tiny_model, precision="fp32").precision == "fp32"


def test_missing_model_explains_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as hub_error:
        ClipEmbedder(model="openai/clip-vit-base-patch32-not-cached").dimension
    message = str(hub_error.value)
    assert "openai/clip-vit-base-patch32-not-cached" in message
    assert "download_model" in message and "IMGSIM_MODEL" in message
    with pytest.raises(ModelUnavailable) as folder_error:
        ClipEmbedder(model=str(tmp_path / "nothing-here")).encode_texts(["x"])
    assert str(tmp_path / "nothing-here") in str(folder_error.value)


def test_web_modules_do_not_import_torch_or_chromadb(tmp_path):
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE']='imgsim_site.settings'; django.setup();"
        "import gallery.views, search.views, search.python_api, imgsim_site.urls;"
        "print(sorted(m for m in ('torch', 'transformers', 'chromadb') if m in sys.modules))"
    )
    env = {**os.environ, "IMGSIM_DATA_DIR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_a_missing_model_is_not_retried_on_every_request(monkeypatch, tmp_path):
    import transformers

    embedder = ClipEmbedder(model=str(tmp_path / "absent"))
    with pytest.raises(ModelUnavailable):
        embedder.dimension
    calls = []
    monkeypatch.setattr(transformers.CLIPModel, "from_pretrained", lambda *a, **k: calls.append(1))
    with pytest.raises(ModelUnavailable):
        embedder.encode_texts(["again"])
    assert calls == []  # the remembered failure answered at once


def test_a_backend_path_that_does_not_resolve_fails_the_start_up_check(settings):
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from search.embeddings import get_embedder

    settings.IMGSIM_EMBEDDER = {"BACKEND": "search.embeddings.NoSuchEmbedder", "OPTIONS": {}}
    get_embedder.cache_clear()
    with pytest.raises(
        SystemCheckError, match=r"IMGSIM_EMBEDDER\['BACKEND'\] = 'search.embeddings.NoSuchEmbedder' cannot"
    ):
        call_command("check")
    with pytest.raises(ImproperlyConfigured, match="cannot be imported"):
        get_embedder()
    settings.IMGSIM_INDEX = {"BACKEND": "search.embeddings.ClipEmbedder", "OPTIONS": {}}
    with pytest.raises(SystemCheckError, match="is not a search.index.VectorIndex subclass"):
        call_command("check")
