"""Which numeric path runs each model tower fastest on this machine: measured once, then remembered.

The paths: torch fp32, torch under bfloat16 autocast ("bf16"), ONNX Runtime fp32
("onnx") and ONNX Runtime with int8 weights ("int8", only when allowed and checked).
IMGSIM_PRECISION=auto used to run bfloat16 wherever the CPU reported bfloat16
instructions. On an Intel Xeon with AVX512-BF16 but no AMX that was 2x slower than
fp32; on another AVX-512 machine bfloat16 was 3x faster; emulated on AVX2 it was 7x
slower. No CPU flag predicts it, so auto times it: at the first load of a model on
a machine, a probe batch runs through each tower on each path; the fastest path
whose output matches fp32 (mean cosine >= MIN_COSINE) wins, separately for the
image and the text tower. The decision is kept in the data dir (model-paths.json)
under the CPU model, the torch and ONNX Runtime versions and the model, so later
starts read it instead of measuring. The duplicate scan's block product is a
different workload: its dtype is measured the same way, on its own.

int8 quantisation can lose accuracy on real weights in ways a probe batch of
random pixels does not show: it is a candidate only with IMGSIM_ALLOW_INT8=1 and
after `manage.py check_model` passed on the library's own photos (search.model_check),
and that check, not the probe's cosine, is its bar (MIN_COSINE_CHECKED).

IMGSIM_PRECISION=fp32, bf16, onnx or int8 forces a path; on a GPU (IMGSIM_DEVICE)
torch runs fp16 unless fp32 is forced. `manage.py model_info` shows what was
chosen and the rates measured (`--measure` measures again).
"""

import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
from django.conf import settings

log = logging.getLogger(__name__)

PATHS = ("fp32", "bf16", "onnx", "int8")  # the values IMGSIM_PRECISION may force
MIN_COSINE = 0.999
# int8 is judged by `manage.py check_model` on the library's own photos (recall agreement), which it
# passed before it became a candidate; on the probe it only has to show a sound export. Held to
# MIN_COSINE, an int8 text tower sat right at the bar on short queries and was seldom chosen, however fast.
MIN_COSINE_CHECKED = 0.99
PROBE_IMAGES, PROBE_TEXTS = 8, 16
CLEARLY_SLOWER = 3.0  # a path this much slower on its first run is not timed further


def cpu_model() -> str:
    """The CPU's model name, as lscpu reports it (decisions are kept per CPU model)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_file() -> Path:
    """In the data dir; outside a configured imgsim (the standalone toolkit), in the user's cache."""
    if settings.configured and getattr(settings, "DATA_DIR", None):
        return Path(settings.DATA_DIR) / "model-paths.json"
    return Path.home() / ".cache" / "imgsim" / "model-paths.json"


def _key(model_name: str, *, int8: bool = False) -> str:
    import onnxruntime
    import torch

    allowed = " | int8 allowed" if int8 else ""
    return f"{cpu_model()} | torch {torch.__version__} | onnxruntime {onnxruntime.__version__} | {model_name}{allowed}"


def _read() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _write(key: str, record: dict) -> None:
    """Remember a decision."""
    _store({**_read(), key: record})


def _store(records: dict) -> None:
    """Write every decision (temp file and rename: a crash leaves the old file or the new one)."""
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(records, indent=2, sort_keys=True))
    temporary.replace(path)


def forget(model_name: str) -> None:
    """Drop what was measured for this model on this machine: the next load measures again."""
    records = _read()
    keys = {_key(model_name), _key(model_name, int8=True)}
    if keys & set(records):
        _store({key: record for key, record in records.items() if key not in keys})


def remembered(model_name: str, *, int8: bool = False) -> dict | None:
    return _read().get(_key(model_name, int8=int8))


def int8_check(model_name: str) -> dict | None:
    """The last `manage.py check_model` verdict on int8 for this model (search.model_check)."""
    import onnxruntime

    return _read().get(f"int8 check | onnxruntime {onnxruntime.__version__} | {model_name}")


def remember_int8_check(model_name: str, verdict: dict) -> None:
    import onnxruntime

    _write(f"int8 check | onnxruntime {onnxruntime.__version__} | {model_name}", verdict)
    forget(model_name)  # auto measures again, now with (or without) int8 among the candidates


def _time(run) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    output = run()
    return time.perf_counter() - started, output


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def measure_tower(run_in: dict, count: int) -> dict:
    """Time one tower under each path; run_in[path]() returns its (n, dim) output. Return rates and cosines."""
    first, outputs = {}, {}
    for path, run in run_in.items():
        first[path], outputs[path] = _time(run)  # includes one-off costs; a clearly slow path stops here
    rates, cosines = {}, {}
    fastest_first = min(first.values())
    for path, run in run_in.items():
        seconds = first[path]
        if seconds <= CLEARLY_SLOWER * fastest_first:
            seconds = min(seconds, *(_time(run)[0] for _ in range(2)))
        rates[path] = round(count / seconds, 2)
        reference, output = _unit(outputs["fp32"]), _unit(outputs[path])
        cosines[path] = round(float(np.mean(np.sum(reference * output, axis=1))), 5)
    return {"rates": rates, "cosine": cosines}


def fastest(measured: dict, *, checked: frozenset[str] = frozenset()) -> str:
    """The fastest path whose output matches fp32's (fp32 itself always does); checked paths by a looser bar."""
    usable = [
        path
        for path in measured["rates"]
        if measured["cosine"].get(path, 0.0) >= (MIN_COSINE_CHECKED if path in checked else MIN_COSINE)
    ]
    return max(usable or ["fp32"], key=lambda path: measured["rates"][path])


def choose(model_name: str, run, probe: dict, *, setting: str, device: str = "cpu", allow_int8: bool = False) -> dict:
    """The path per tower ({"image": "fp32", "text": "onnx", ...}) here: forced, remembered or measured.

    run(tower, path) returns the function that runs a tower on a path (exporting it
    first for ONNX paths); probe[tower] is the list of inputs it is timed on: one
    batch of images (ingest encodes batches), texts one at a time (a search encodes
    one query, where fixed costs per call dominate: ONNX Runtime ran a single query
    ~4x faster than torch on a ViT-B/32 text tower where batches ran at par).
    """
    if device != "cpu":
        path = "fp32" if setting == "fp32" else "fp16"
        return {"image": path, "text": path, "source": f"{device} (IMGSIM_DEVICE)"}
    int8_usable = bool((int8_check(model_name) or {}).get("passed"))
    if setting == "int8" and not int8_usable:
        log.warning("IMGSIM_PRECISION=int8 needs a passing `manage.py check_model` first; running onnx (fp32)")
        return {"image": "onnx", "text": "onnx", "source": "IMGSIM_PRECISION=int8, not checked: onnx until then"}
    if setting in PATHS:
        return {"image": setting, "text": setting, "source": f"IMGSIM_PRECISION={setting}"}
    with_int8 = allow_int8 and int8_usable
    record = remembered(model_name, int8=with_int8)
    if record is None:
        record = _measure(run, probe, with_int8)
        _write(_key(model_name, int8=with_int8), record)
    return {**record, "source": "measured on this machine"}


def product_ratio() -> float:
    """How many times slower a bfloat16 matrix product of a ViT layer's shape is than fp32's, here.

    Emulated bfloat16 (no native instructions) runs a ViT-B/32 batch 7-10x slower:
    this takes milliseconds to show what a tower run would take seconds to.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    activations = torch.randn(8 * 50, 768, generator=generator)
    weights = torch.randn(768, 3072, generator=generator)
    seconds = {}
    with torch.inference_mode():
        for dtype in (torch.float32, torch.bfloat16):
            a, b = activations.to(dtype), weights.to(dtype)
            a @ b  # warm-up
            seconds[dtype] = min(_time(lambda: a @ b)[0] for _ in range(5))
    return seconds[torch.bfloat16] / max(seconds[torch.float32], 1e-9)


def candidates(ratio: float, int8: bool) -> list[str]:
    paths = ["fp32"] + (["bf16"] if ratio < CLEARLY_SLOWER else []) + ["onnx"]
    return paths + (["int8"] if int8 else [])


def _measure(run, probe: dict, int8: bool) -> dict:
    import onnxruntime
    import torch

    log.info("measuring the model's numeric paths on this CPU (once; see manage.py model_info)")
    ratio = product_ratio()
    paths = candidates(ratio, int8)
    checked = frozenset({"int8"} if int8 else ())
    measured = {}
    for tower, count in (("image", PROBE_IMAGES), ("text", PROBE_TEXTS)):
        calls = probe[tower]  # a list of inputs: one image batch, as ingest runs; texts one by one, as search does
        runners = {path: run(tower, path) for path in paths}
        measured[tower] = measure_tower(
            {
                path: (lambda r=runner: np.concatenate([r(inputs) for inputs in calls]))
                for path, runner in runners.items()
            },
            count,
        )
    record = {
        "bf16_product_ratio": round(ratio, 2),  # bf16 time / fp32 time of one layer-sized product
        "image": fastest(measured["image"], checked=checked),
        "text": fastest(measured["text"], checked=checked),
        "image_measured": measured["image"],
        "text_measured": measured["text"],
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    log.info(
        "model paths: image %s %s, text %s %s",
        record["image"],
        measured["image"]["rates"],
        record["text"],
        measured["text"]["rates"],
    )
    return record


BLOCK_KEY = "duplicate scan block product"


def block_dtype() -> str:
    """The duplicate scan's block product: "fp32", "bf16" or "int8", whichever ran fastest here.

    Rounding is safe there: blocks only nominate candidates, which are re-scored in fp32
    (search.similarity), so every path finds the same pairs.
    """
    import torch

    embedder = getattr(settings, "IMGSIM_EMBEDDER", {}) if settings.configured else {}
    setting = embedder.get("OPTIONS", {}).get("precision", "auto")
    if setting in ("fp32", "bf16"):
        return setting
    key = f"{cpu_model()} | torch {torch.__version__} | {BLOCK_KEY}"
    record = _read().get(key)
    if (
        record is None
        or record.get("dtype") not in ("fp32", "bf16", "int8")
        or "int8" not in record["measured"]["rates"]
    ):
        generator = torch.Generator().manual_seed(0)
        rows = torch.nn.functional.normalize(torch.randn(512, 512, generator=generator), dim=1)
        columns = torch.nn.functional.normalize(torch.randn(16384, 512, generator=generator), dim=1)

        def product(kind):
            if kind == "int8":
                a, b = (torch.round(m * 500).to(torch.int8) for m in (rows, columns))
                return lambda: torch._int_mm(a, b.T).float().numpy()
            dtype = torch.bfloat16 if kind == "bf16" else torch.float32
            a, b = rows.to(dtype), columns.to(dtype)
            return lambda: (a @ b.T).float().numpy()

        measured = measure_tower({kind: product(kind) for kind in ("fp32", "bf16", "int8")}, 512)
        measured["cosine"] = {path: 1.0 for path in measured["rates"]}  # candidates are re-scored in fp32
        record = {"dtype": fastest(measured), "measured": measured, "cpu": cpu_model(), "torch": torch.__version__}
        _write(key, record)
    return record["dtype"]


PASS_KEY = "search pass over the vector file (fp16, int8, int4 of gallery/int4.c)"
SEARCH_PASSES = ("fp16", "int8", "int4")


def _pass_key() -> str:
    import torch

    return f"{cpu_model()} | torch {torch.__version__} | {PASS_KEY}"


def search_pass_record() -> dict | None:
    """What search_pass measured on this machine, if it did."""
    return _read().get(_pass_key())


# This process's decision per decisions file: search asks on every query, and reading the file
# and /proc/cpuinfo each time would be work repeated on the hot path.
_passes: dict[Path, str] = {}


def search_pass() -> str:
    """Exact search's pass over every vector: "fp16" (the shared file), "int8" or "int4" (its twins:
    a half or a quarter of the bytes, gallery.vector_file), whichever ran fastest here;
    IMGSIM_SEARCH_PASS forces one.

    Timed once per CPU and torch on 131,072 random vectors (larger than the caches, so bound by
    memory as a real library is): int8 through torch's weight-only product, which needs bfloat16
    input and was several times slower than fp16 on a CPU where bfloat16 is slow; int4 through
    gallery/int4.c, when it was compiled.
    """
    setting = getattr(settings, "IMGSIM_SEARCH_PASS", "auto") if settings.configured else "auto"
    if setting in SEARCH_PASSES:
        return setting
    if (known := _passes.get(cache_file())) is not None:
        return known
    key = _pass_key()
    record = _read().get(key)
    if record is None or record.get("pass") not in SEARCH_PASSES:
        import torch

        from gallery.vector_file import int4_kernel, int4_quantise, int4_scores

        generator = torch.Generator().manual_seed(0)
        rows = torch.nn.functional.normalize(torch.randn(131_072, 512, generator=generator), dim=1)
        query = rows[7].clone()  # not a view: rows go once the twins are made
        half, quantised = rows.half(), torch.round(rows * 500).to(torch.int8)
        scales = torch.full((len(quantised),), 1 / 500, dtype=torch.bfloat16)
        runs = {
            "fp16": lambda: half @ query.half(),
            "int8": lambda: torch._weight_int8pack_mm(query.view(1, -1).bfloat16(), quantised, scales),
        }
        if int4_kernel():  # else not compiled: no int4 pass here
            tiles = int4_quantise(rows)
            runs["int4"] = lambda: int4_scores(tiles, query.numpy())
        del rows
        seconds = {}
        with torch.inference_mode():
            for name, run in runs.items():
                try:
                    seconds[name] = min(_time(run)[0] for _ in range(9))
                except (RuntimeError, TypeError):  # an op this build of torch lacks: not this one
                    seconds[name] = float("inf")
        fastest = min(seconds, key=seconds.get)
        chosen = fastest if seconds[fastest] < 0.9 * seconds["fp16"] else "fp16"  # a clear win, not noise
        record = {
            "pass": chosen,
            "ms": {name: round(value * 1000, 2) for name, value in seconds.items() if value != float("inf")},
            "cpu": cpu_model(),
            "torch": torch.__version__,
        }
        log.info("search pass: %s (ms over 131,072 vectors: %s)", chosen, record["ms"])
        _write(key, record)
    _passes[cache_file()] = record["pass"]
    return record["pass"]
