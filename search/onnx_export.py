"""ONNX Runtime copies of a model's towers, exported once per model and versions, kept in the data dir.

Each tower module (search.towers) is exported with torch.onnx (no network) into
DATA_DIR/onnx/<model>-<fingerprint>/, next to a manifest of sha256 checksums. The
fingerprint covers the model's weight and config files (name, size, time) and the
torch, onnx and ONNX Runtime versions, so a changed model or an upgrade exports
afresh; a file whose checksum does not match is exported again. int8 copies are
made from the fp32 export by ONNX Runtime's dynamic quantisation (weights int8,
activations quantised per batch), and are used only after `manage.py check_model`
(search.model_check) found them close enough on the user's own photos.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import re
import warnings
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

OPSET = 17
_WEIGHT_FILES = ("config.json", "*.safetensors", "*.bin", "modules.json")


def root() -> Path:
    if settings.configured and getattr(settings, "DATA_DIR", None):
        return Path(settings.DATA_DIR) / "onnx"
    return Path.home() / ".cache" / "imgsim" / "onnx"


def versions() -> dict:
    import onnx
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def fingerprint(model_name: str, towers) -> str:
    files = []
    for folder in towers.folders:
        for pattern in _WEIGHT_FILES:
            for path in sorted(Path(folder).rglob(pattern)):
                stat = path.stat()
                files.append([str(path), stat.st_size, stat.st_mtime_ns])
    facts = {"model": model_name, "family": towers.family, "versions": versions(), "files": files}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def folder_for(model_name: str, towers) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name.strip("/.")).strip("_")[-60:] or "model"
    return root() / f"{slug}-{fingerprint(model_name, towers)}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(folder: Path):
    """One process exports at a time (web workers start together); the others then find the file."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def exported(model_name: str, towers, tower: str, *, int8: bool = False) -> Path:
    """The ONNX file of one tower ("image" or "text"), exported (and quantised) when missing or damaged."""
    folder = folder_for(model_name, towers)
    name = f"{tower}.int8.onnx" if int8 else f"{tower}.onnx"
    with _locked(folder):
        manifest_path = folder / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            manifest = {"model": model_name, "family": towers.family, "versions": versions(), "files": {}}
        path = folder / name
        if path.exists() and manifest["files"].get(name) == _sha256(path):
            return path
        if int8:
            source = _ensure(folder, manifest, f"{tower}.onnx", lambda target: _export(towers, tower, target))
            _ensure(folder, manifest, name, lambda target: _quantise(source, target))
        else:
            _ensure(folder, manifest, name, lambda target: _export(towers, tower, target))
        temporary = manifest_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        temporary.replace(manifest_path)
        return path


def _ensure(folder: Path, manifest: dict, name: str, make) -> Path:
    path = folder / name
    if path.exists() and manifest["files"].get(name) == _sha256(path):
        return path
    temporary = folder / f"{name}.partial"
    log.info("exporting %s to %s (once per model and versions)", name, folder)
    make(temporary)
    temporary.replace(path)
    manifest["files"][name] = _sha256(path)
    return path


def _export(towers, tower: str, target: Path) -> None:
    import torch

    module = towers.image if tower == "image" else towers.text
    if tower == "image":
        crop = towers.preprocessing["crop"]
        inputs = {"pixel_values": torch.zeros(2, 3, crop, crop)}
        axes = {"pixel_values": {0: "batch"}}
    else:
        encoded = towers.tokenize(["a photo", "a photo of a dog on a beach"])
        inputs = {name: torch.from_numpy(value) for name, value in encoded.items()}
        axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that do not apply to these inputs
        torch.onnx.export(
            module,
            tuple(inputs.values()),
            str(target),
            input_names=list(inputs),
            output_names=["features"],
            dynamic_axes={**axes, "features": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def _quantise(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # quantize_dynamic logs advice to pre-process, which is for CNNs
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        root_logger.setLevel(level)


def session(path: Path, *, threads: int = 0):
    """An ONNX Runtime session whose idle threads sleep. Spinning threads cut a lone text query's
    latency by ~15%, but went on spinning after it and took the cores from the rest of the request:
    a search page took 47-54 ms instead of 29-31 (bench.pages); between image batches they would
    take them from the decode threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
