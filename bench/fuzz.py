"""Coverage-guided fuzzing of decode + EXIF + renditions with atheris (libFuzzer for Python).

    .venv/bin/pip install atheris
    .venv/bin/python -m bench.fuzz [--runs 200000] [--corpus DIR]

Starts from small valid files of every supported format (tests/fuzz_targets.py) and
reports any input that raises something other than NotAnImage or DecodeError (it is
saved as crash-* in the current folder by libFuzzer). Prints the runs done at the end.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--corpus", type=Path, default=None, help="folder of inputs to start from and grow")
    args, rest = parser.parse_known_args()
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: .venv/bin/pip install atheris")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    with atheris.instrument_imports():
        import PIL.Image  # noqa: F401 - instrument Pillow's Python plugins and imgsim's decode path

        from tests.fuzz_targets import decode_one, seed_images
    corpus = args.corpus or Path(tempfile.mkdtemp(prefix="imgsim-fuzz-"))
    corpus.mkdir(parents=True, exist_ok=True)
    for fmt, data in seed_images().items():
        (corpus / f"seed-{fmt.lower()}").write_bytes(data)
    started = time.perf_counter()
    atheris.Setup(
        [sys.argv[0], f"-runs={args.runs}", "-max_len=65536", str(corpus), *rest], lambda data: decode_one(bytes(data))
    )
    try:
        atheris.Fuzz()
    finally:
        print(f"fuzzed for {time.perf_counter() - started:.0f} s; corpus in {corpus}")


if __name__ == "__main__":
    main()
