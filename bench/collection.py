"""Export/import benchmark: the whole library to .json.gz and back into an empty database.

    .venv/bin/python -m bench.collection [--photos 100000]

Export and import run as `manage.py` child processes, so their peak memory (max RSS,
from /usr/bin/time) is theirs alone: streaming means it stays flat as the library grows.
The photos' files are hard links to one small JPEG (the benchmark is about rows,
vectors and the index, not copying bytes).
"""

import argparse
import os
import subprocess
import sys
import time

from bench.common import ROOT, setup_django, synthetic_library, table

MODEL = "bench/random-512"


def run(*args) -> tuple[float, float]:
    """Run a manage.py command; return (seconds, peak RSS in MB).

    Through /usr/bin/time: a child forked straight from this big process would
    inherit its peak RSS on Linux (the high-water mark survives exec).
    """
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "peak-kb %M", sys.executable, str(ROOT / "manage.py"), *args, "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        sys.exit(f"{args[0]} failed:\n{result.stdout}{result.stderr}")
    print("  " + result.stdout.strip().splitlines()[-1])
    peak_kb = int(result.stderr.rsplit("peak-kb", 1)[1].split()[0])
    return time.perf_counter() - started, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100_000)
    args = parser.parse_args()
    data = setup_django("collection", IMGSIM_MODEL=MODEL)
    from django.conf import settings

    from gallery import storage
    from gallery.models import Image
    from search.reconcile import reindex
    from tests.photos import photo_bytes

    synthetic_library(args.photos, model=MODEL)
    reindex()
    media = settings.MEDIA_ROOT
    sample, links = None, 0
    for sha, image_format in Image.objects.values_list("sha256", "format"):
        for relpath in [storage.original_relpath(sha, image_format)] + [
            storage.rendition_relpath(sha, kind) for kind in storage.RENDITIONS
        ]:
            target = os.path.join(media, relpath)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if links % 50_000 == 0:  # a file system allows ~65k links to one file
                sample = storage.write_atomic(f"sample-{links}.jpg", photo_bytes(1, size=(64, 48)))
            os.link(sample, target)
            links += 1
    out = data / "library.json.gz"
    export_s, export_mb = run("export_collection", str(out))
    Image.objects.all().delete()  # the same data dir under an empty database
    import_s, import_mb = run("import_collection", str(out))
    again = Image.objects.count()
    print(f"\n{args.photos:,} photos, 512-d vectors, {out.stat().st_size / 1e6:.0f} MB .json.gz; this machine")
    print(
        table(
            ["step", "seconds", "photos/s", "peak RSS MB"],
            [
                ["export_collection", f"{export_s:.1f}", f"{args.photos / export_s:,.0f}", f"{export_mb:.0f}"],
                [
                    "import_collection (incl. index)",
                    f"{import_s:.1f}",
                    f"{args.photos / import_s:,.0f}",
                    f"{import_mb:.0f}",
                ],
            ],
        )
    )
    print(f"rows after import: {again:,}")


if __name__ == "__main__":
    main()
