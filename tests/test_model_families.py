"""Every supported model family loads from its real folder layout and runs on every numeric path."""

import json

import numpy as np
import pytest

from search.embeddings import TransformersEmbedder
from search.errors import ModelUnavailable
from tests.photos import photo_image
from tests.tiny_models import (
    build_tiny_multilingual,
    build_tiny_sentence_transformers_clip,
    build_tiny_siglip,
)

TEXTS = ["a cat on a sofa", "red car at night", "eine Katze am Strand", "un perro en la playa", ""]


@pytest.fixture(scope="module")
def family_folders(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("families")
    st_clip = build_tiny_sentence_transformers_clip(root / "st-clip")
    return {
        "CLIP": {"model": tiny_model},
        "SigLIP": {"model": str(build_tiny_siglip(root / "siglip"))},
        "sentence-transformers CLIP": {"model": str(st_clip)},
        "multilingual": {"model": str(build_tiny_multilingual(root / "multilingual")), "image_model": str(st_clip)},
    }


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


def unit_rows(vectors, count, dimension=32):
    assert vectors.dtype == np.float32 and vectors.shape == (count, dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("family", ["CLIP", "SigLIP", "sentence-transformers CLIP", "multilingual"])
def test_each_family_gives_the_same_vectors_on_torch_and_onnx(family, family_folders):
    images = [photo_image(1), photo_image(2, size=(300, 80)), photo_image(3, size=(40, 40))]
    fp32 = TransformersEmbedder(**family_folders[family], precision="fp32")
    onnx = TransformersEmbedder(**family_folders[family], precision="onnx")
    assert fp32.family.startswith(family) and onnx.precision == "image onnx, text onnx"
    reference_images, reference_texts = fp32.encode_images(images), fp32.encode_texts(TEXTS)
    unit_rows(reference_images, 3)
    unit_rows(reference_texts, len(TEXTS))
    assert len({vector.tobytes() for vector in reference_texts}) == len(TEXTS)  # every text has its own vector
    assert np.sum(reference_images * onnx.encode_images(images), axis=1).min() > 0.9999
    assert np.sum(reference_texts * onnx.encode_texts(TEXTS), axis=1).min() > 0.9999


def test_siglip_squashes_images_to_its_size_and_pads_texts_to_full_length(family_folders):
    embedder = TransformersEmbedder(**family_folders["SigLIP"], precision="fp32")
    pixels = embedder.preprocess(photo_image(4, size=(300, 80)))
    assert pixels.shape == (3, 32, 32) and -1.0 <= pixels.min() and pixels.max() <= 1.0
    assert embedder._load().towers.tokenize(["cat", "a red car at night"])["input_ids"].shape == (2, 16)


def test_a_multilingual_text_encoder_runs_with_its_paired_image_tower(family_folders):
    """The image vectors are the paired CLIP's own; text is transformer, mean pooling and the dense layer."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    folders = family_folders["multilingual"]
    multilingual = TransformersEmbedder(**folders, precision="fp32")
    clip = TransformersEmbedder(model=folders["image_model"], precision="fp32")
    images = [photo_image(5), photo_image(6)]
    assert np.allclose(multilingual.encode_images(images), clip.encode_images(images), atol=1e-6)

    text = "eine Katze am Strand"
    encoder, tokenizer = AutoModel.from_pretrained(folders["model"]), AutoTokenizer.from_pretrained(folders["model"])
    weight = load_file(f"{folders['model']}/2_Dense/model.safetensors")["linear.weight"]
    with torch.no_grad():
        hidden = encoder(**tokenizer([text], return_tensors="pt")).last_hidden_state
        expected = (hidden.mean(dim=1) @ weight.T).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(multilingual.encode_texts([text]), expected, atol=1e-5)


def test_a_text_encoder_without_an_image_tower_says_which_setting_names_one(family_folders):
    with pytest.raises(ModelUnavailable, match="IMGSIM_IMAGE_MODEL"):
        TransformersEmbedder(model=family_folders["multilingual"]["model"]).dimension


def test_an_unsupported_model_lists_what_works(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelUnavailable) as error:
        TransformersEmbedder(model=str(tmp_path / "bert")).dimension
    assert "'bert'" in str(error.value) and "SigLIP" in str(error.value) and "clip-ViT-B-32" in str(error.value)


def test_transformers_5_processor_config_is_read(tmp_path, tiny_model):
    """CLIPProcessor.save_pretrained in transformers 5 writes processor_config.json only."""
    import shutil

    folder = tmp_path / "clip"
    shutil.copytree(tiny_model, folder)
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").unlink()
    processor["image_mean"], processor["image_std"] = [0.1, 0.2, 0.3], [0.5, 0.5, 0.5]
    (folder / "processor_config.json").write_text(json.dumps({"image_processor": processor}))
    prep = TransformersEmbedder(model=str(folder), precision="fp32")._load().towers.preprocessing
    assert prep["mean"].ravel().tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_onnx_exports_are_kept_with_checksums_and_redone_when_damaged(tiny_model, data_dir, monkeypatch):
    from search import onnx_export

    images = [photo_image(7)]
    first = TransformersEmbedder(model=tiny_model, precision="onnx").encode_images(images)
    (folder,) = (data_dir / "onnx").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"image.onnx", "text.onnx"}
    assert manifest["versions"]["onnxruntime"] and manifest["model"] == tiny_model

    exports = []
    real_export = onnx_export._export
    monkeypatch.setattr(onnx_export, "_export", lambda *args: exports.append(args[1]) or real_export(*args))
    again = TransformersEmbedder(model=tiny_model, precision="onnx").encode_images(images)
    assert exports == [] and np.array_equal(first, again)  # kept: not exported again

    with (folder / "image.onnx").open("r+b") as file:  # a damaged copy (a crash mid-write, a bad disk)
        file.seek(200)
        file.write(b"\0" * 64)
    repaired = TransformersEmbedder(model=tiny_model, precision="onnx").encode_images(images)
    assert exports == ["image"] and np.allclose(first, repaired, atol=1e-6)
    assert not list(folder.glob("*.partial"))


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="no CUDA GPU on this machine")
def test_a_gpu_runs_fp16_close_to_the_cpu(tiny_model):
    cpu = TransformersEmbedder(model=tiny_model, precision="fp32", device="cpu")
    gpu = TransformersEmbedder(model=tiny_model, device="auto")
    assert gpu.paths["device"] == "cuda" and gpu.precision == "image fp16, text fp16" and gpu.batch_size == 128
    images = [photo_image(seed) for seed in range(4)]
    assert np.sum(cpu.encode_images(images) * gpu.encode_images(images), axis=1).min() > 0.99


def test_download_model_of_a_local_folder_says_there_is_nothing_to_download(tiny_model):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="is a local folder"):
        call_command("download_model", "--model", tiny_model)


def test_only_a_text_encoder_needs_an_image_tower(family_folders):
    from search.model_families import is_text_only

    assert is_text_only(family_folders["multilingual"]["model"])
    assert not any(
        is_text_only(family_folders[name]["model"]) for name in ("CLIP", "SigLIP", "sentence-transformers CLIP")
    )
