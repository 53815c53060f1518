"""The model families imgsim loads through transformers, each reduced to an image tower and a text tower.

A tower is a torch module from tensors to (n, dim) features, so every numeric path
(torch fp32, bfloat16, fp16 on a GPU, ONNX Runtime fp32 and int8; search.paths)
runs the same thing. Families:

- CLIP (`CLIPModel`): openai/clip-vit-base-patch32 and other transformers CLIP folders;
- SigLIP and fixed-resolution SigLIP 2 (`SiglipModel`): google/siglip-base-patch16-224, ...;
- sentence-transformers CLIP (`clip-ViT-B-32`): a CLIPModel in the folder's 0_CLIPModel;
- multilingual sentence-transformers text encoders aligned to CLIP's image space
  (`clip-ViT-B-32-multilingual-v1`): transformer, mean pooling and a dense layer for text,
  paired with the CLIP image tower they were trained against (IMGSIM_IMAGE_MODEL).

Everything is read from a local folder: a path, or the Hugging Face cache's copy
of a hub id (downloaded first when it is missing and the hub is reachable).
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from search.errors import ModelUnavailable

log = logging.getLogger(__name__)

# The brief and sentence-transformers name these without their hub organisation.
SHORT_NAMES = {
    "clip-ViT-B-32": "sentence-transformers/clip-ViT-B-32",
    "clip-ViT-B-16": "sentence-transformers/clip-ViT-B-16",
    "clip-ViT-L-14": "sentence-transformers/clip-ViT-L-14",
    "clip-ViT-B-32-multilingual-v1": "sentence-transformers/clip-ViT-B-32-multilingual-v1",
}
# The image tower a multilingual text encoder was distilled against (its model card).
PAIRED_IMAGE_MODELS = {
    "sentence-transformers/clip-ViT-B-32-multilingual-v1": "sentence-transformers/clip-ViT-B-32",
}
SUPPORTED = (
    "CLIP (transformers CLIPModel, e.g. openai/clip-vit-base-patch32), "
    "SigLIP and fixed-resolution SigLIP 2 (SiglipModel, e.g. google/siglip-base-patch16-224), "
    "sentence-transformers CLIP (clip-ViT-B-32) and multilingual text encoders paired with a CLIP "
    "image tower (clip-ViT-B-32-multilingual-v1)"
)
# Files a model needs; a hub snapshot skips other frameworks' weights.
_IGNORE = ["*.h5", "*.msgpack", "*.onnx", "*.ot", "*.tflite", "flax_*", "tf_*", "rust_model*", "onnx/*", "openvino/*"]
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class UnsupportedModel(ModelUnavailable):
    """The folder holds a model of a family imgsim does not load."""


@dataclass
class Towers:
    """One loaded model: what each tower runs, how text is tokenized and images prepared."""

    family: str
    image: object  # torch.nn.Module: pixel_values -> features
    text: object  # torch.nn.Module: **text_inputs -> features
    tokenizer: object
    text_inputs: tuple[str, ...]
    token_options: dict
    preprocessing: dict  # size, crop (or squash), mean, std
    dimension: int
    folders: list[Path] = field(default_factory=list)

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        encoded = self.tokenizer(texts, truncation=True, return_tensors="np", **self.token_options)
        return {name: np.ascontiguousarray(encoded[name], dtype=np.int64) for name in self.text_inputs}


def resolve(name: str) -> str:
    return SHORT_NAMES.get(name, name)


def is_local(name: str) -> bool:
    return Path(name).is_absolute() or name.startswith(".") or Path(name).is_dir()


def local_folder(name: str) -> Path:
    """The folder holding the model: the path itself, or the hub id's snapshot (downloaded when missing)."""
    if is_local(name):
        folder = Path(name).expanduser()
        if not (folder / "config.json").exists() and not (folder / "modules.json").exists():
            raise ModelUnavailable(
                f"Model folder '{name}' holds no config.json or modules.json. Point IMGSIM_MODEL at a folder "
                "written by `python manage.py download_model --to` or by save_pretrained."
            )
        return folder
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, local_files_only=True, ignore_patterns=_IGNORE))
    except Exception:  # not cached (LocalEntryNotFoundError and friends)
        pass
    unreachable = hub_unreachable()
    if unreachable:
        raise ModelUnavailable(missing_message(name, unreachable))
    try:
        return Path(snapshot_download(name, ignore_patterns=_IGNORE + _skip_duplicate_weights(name)))
    except Exception as error:
        raise ModelUnavailable(missing_message(name, error)) from error


def _skip_duplicate_weights(name: str) -> list[str]:
    """Where a repository has safetensors, its pickled copy of the same weights is not downloaded too."""
    from huggingface_hub import list_repo_files

    files = list_repo_files(name)
    return ["*.bin", "*.pt"] if any(file.endswith(".safetensors") for file in files) else []


def hub_unreachable(timeout: float = 3.0) -> str:
    """Why the model hub cannot be reached, from one short connection attempt ("" when it can).

    huggingface_hub retries a refused or silent network for ~30 s with a warning per try;
    one probe says at once that a download cannot work.
    """
    import os
    import socket
    from urllib.parse import urlsplit

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return "HF_HUB_OFFLINE=1 forbids downloading it"
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return f"{host} cannot be reached ({error.strerror or error})"
    return ""


def missing_message(name: str, error) -> str:
    reason = error if isinstance(error, str) else f"it cannot be downloaded ({error})"
    return (
        f"Model '{name}' is not in the local cache and {reason}. Photos are still stored and shown; "
        "search needs the model. On a connected machine run `python manage.py download_model --to DIR`, copy DIR "
        "here and set IMGSIM_MODEL=DIR; then `python manage.py reconcile` computes the waiting embeddings."
    )


def load(name: str, *, image_model: str = "") -> Towers:
    """Load a model by hub id or folder into its two towers; raise ModelUnavailable with the fix."""
    name = resolve(name)
    folder = local_folder(name)
    modules = _read_json(folder / "modules.json")
    try:
        if modules:
            return _sentence_transformers(name, folder, modules, image_model)
        model_type = (_read_json(folder / "config.json") or {}).get("model_type", "")
        if model_type == "clip":
            return _clip(folder, family="CLIP")
        if model_type == "siglip":
            return _siglip(folder)
    except (OSError, ValueError, KeyError) as error:
        raise ModelUnavailable(f"Model '{name}' in {folder} cannot be loaded: {error}") from error
    raise UnsupportedModel(
        f"Model '{name}' is a {model_type or 'model of unknown type'!r}, which imgsim cannot load. "
        f"Supported: {SUPPORTED}."
    )


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _clip(folder: Path, *, family: str) -> Towers:
    from transformers import AutoTokenizer, CLIPModel

    from search import towers

    model = CLIPModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    max_length = min(getattr(tokenizer, "model_max_length", 77) or 77, model.config.text_config.max_position_embeddings)
    return Towers(
        family=family,
        image=towers.ImageFeatures(model),
        text=towers.TextFeatures(model),
        tokenizer=tokenizer,
        text_inputs=("input_ids", "attention_mask"),
        token_options={"padding": True, "max_length": max_length},
        preprocessing=preprocessing(folder, model.config.vision_config.image_size),
        dimension=int(model.config.projection_dim),
        folders=[folder],
    )


def _siglip(folder: Path) -> Towers:
    from transformers import AutoTokenizer, SiglipModel

    from search import towers

    model = SiglipModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    # SigLIP was trained on texts padded to the full length, without an attention mask.
    length = model.config.text_config.max_position_embeddings
    return Towers(
        family="SigLIP",
        image=towers.ImageFeatures(model),
        text=towers.SiglipTextFeatures(model),
        tokenizer=tokenizer,
        text_inputs=("input_ids",),
        token_options={"padding": "max_length", "max_length": length},
        preprocessing=preprocessing(folder, model.config.vision_config.image_size),
        dimension=int(model.config.vision_config.hidden_size),
        folders=[folder],
    )


def _module_kinds(modules: list) -> dict:
    """sentence-transformers' modules.json as {"CLIPModel": module, "Transformer": module, ...}."""
    return {module["type"].rsplit(".", 1)[-1]: module for module in modules}


_TEXT_ENCODER = {"Transformer", "Pooling", "Dense"}


def is_text_only(folder: Path) -> bool:
    """A multilingual text encoder, which needs the CLIP image tower it was trained against."""
    modules = _read_json(Path(folder) / "modules.json")
    return bool(modules) and _TEXT_ENCODER <= set(_module_kinds(modules))


def _sentence_transformers(name: str, folder: Path, modules: list, image_model: str) -> Towers:
    kinds = _module_kinds(modules)
    if "CLIPModel" in kinds:
        return _clip(folder / kinds["CLIPModel"]["path"], family="sentence-transformers CLIP")
    if _TEXT_ENCODER <= set(kinds):
        image_name = image_model or PAIRED_IMAGE_MODELS.get(name)
        if not image_name:
            raise ModelUnavailable(
                f"'{name}' is a text encoder only: set IMGSIM_IMAGE_MODEL to the CLIP image model it was "
                "trained against (e.g. sentence-transformers/clip-ViT-B-32)."
            )
        images = load(image_name)
        text = _mean_pooled_text(folder, kinds)
        return Towers(
            family=f"multilingual text + {images.family} image",
            image=images.image,
            text=text,
            tokenizer=text.tokenizer,
            text_inputs=("input_ids", "attention_mask"),
            token_options={"padding": True, "max_length": text.max_length},
            preprocessing=images.preprocessing,
            dimension=images.dimension,
            folders=[folder, *images.folders],
        )
    raise UnsupportedModel(
        f"'{name}' is a sentence-transformers model of modules {sorted(kinds)}, which imgsim cannot load. "
        f"Supported: {SUPPORTED}."
    )


def _mean_pooled_text(folder: Path, kinds: dict):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from search import towers

    encoder_folder = folder / kinds["Transformer"]["path"]
    pooling = _read_json(folder / kinds["Pooling"]["path"] / "config.json") or {}
    if not pooling.get("pooling_mode_mean_tokens", True):
        raise UnsupportedModel(f"{folder}: only mean pooling is supported ({pooling})")
    dense_folder = folder / kinds["Dense"]["path"]
    dense_config = _read_json(dense_folder / "config.json")
    dense = torch.nn.Linear(dense_config["in_features"], dense_config["out_features"], bias=dense_config["bias"])
    dense.load_state_dict({key.removeprefix("linear."): value for key, value in _weights(dense_folder).items()})
    activation = dense_config.get("activation_function", "torch.nn.modules.linear.Identity").rsplit(".", 1)[-1]
    if activation not in ("Identity", "Tanh"):
        raise UnsupportedModel(f"{dense_folder}: activation {activation} is not supported (Identity or Tanh)")
    settings = _read_json(folder / "sentence_bert_config.json") or {}
    tower = towers.MeanPooledTextFeatures(AutoModel.from_pretrained(encoder_folder).eval(), dense, activation == "Tanh")
    tower.tokenizer = AutoTokenizer.from_pretrained(encoder_folder)
    tower.max_length = min(int(settings.get("max_seq_length") or 512), tower.tokenizer.model_max_length or 512)
    return tower.eval()


def _weights(folder: Path) -> dict:
    import torch

    if (folder / "model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(folder / "model.safetensors")
    return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)


def preprocessing(folder: Path, image_size: int) -> dict:
    """Resize, crop and normalisation from the folder's image processor config (CLIP's when it has none).

    transformers 5's processor save_pretrained writes processor_config.json with the
    image processor inside; older versions wrote preprocessor_config.json.
    """
    config = _read_json(folder / "preprocessor_config.json")
    if config is None:
        config = (_read_json(folder / "processor_config.json") or {}).get("image_processor")
    if config is None:
        log.warning("no image processor config in %s; using CLIP's resize, crop and normalisation", folder)
        config = {}
    size = config.get("size", image_size)
    squash = isinstance(size, dict) and "height" in size and not config.get("do_center_crop", False)
    crop = config.get("crop_size", image_size)
    crop = crop.get("height", image_size) if isinstance(crop, dict) else crop
    if isinstance(size, dict):
        size = size.get("shortest_edge", size.get("height", crop))
    return {
        "size": int(size),
        "crop": int(size if squash else crop),
        "squash": squash,  # resize both sides to size (SigLIP) instead of shortest edge + centre crop (CLIP)
        "mean": np.array(config.get("image_mean", _CLIP_MEAN), dtype=np.float32).reshape(3, 1, 1),
        "std": np.array(config.get("image_std", _CLIP_STD), dtype=np.float32).reshape(3, 1, 1),
    }
