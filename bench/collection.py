"""Export/import benchmark: the whole library to .json.gz and back into an empty database.

    .venv/bin/python -m bench.collection [--photos 100000] [--chroma-server]

Export and import run as `manage.py` child processes, so their peak memory (max RSS,
from /usr/bin/time) is theirs alone: streaming means it stays flat as the library grows.
With --chroma-server the import writes to a `chroma run` server (CHROMA_URL), whose
peak memory is reported apart: an embedded Chroma holds the HNSW graph of every
vector inside the importing process. With DATABASE_URL=postgres://... the library is
written to that database (emptied first) and imported into a second one beside it,
named like it with "_imported" (dropped and created again: the role needs CREATEDB).
The photos' files are tiny JPEGs, each with its own bytes so that import's SHA-256
check passes (the benchmark is about rows, vectors and the index, not copying bytes).
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

from bench.common import ROOT, setup_django, synthetic_library, table
from bench.deploy import chroma_server, free_port
from bench.scale import cpu_model

MODEL = "bench/random-512"


def run(*args, env: dict | None = None) -> tuple[float, float]:
    """Run a manage.py command (env: variables to change); return (seconds, peak RSS in MB).

    Through /usr/bin/time: a child forked straight from this big process would
    inherit its peak RSS on Linux (the high-water mark survives exec).
    """
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "peak-kb %M", sys.executable, str(ROOT / "manage.py"), *args, "--no-progress"],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    if result.returncode:
        sys.exit(f"{args[0]} failed:\n{result.stdout}{result.stderr}")
    print("  " + result.stdout.strip().splitlines()[-1])
    peak_kb = int(result.stderr.rsplit("peak-kb", 1)[1].split()[0])
    return time.perf_counter() - started, peak_kb / 1024


def _peak_mb(pid: int) -> float:
    """A running process's peak resident memory (VmHWM) in MB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def _second_database() -> dict:
    """On PostgreSQL, an empty database beside the first for the import (variables to point at it);
    on SQLite nothing: the second data dir has its own file."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return {}
    parts = urlsplit(os.environ["DATABASE_URL"])
    name = f"{connection.settings_dict['NAME']}_imported"
    with connection.cursor() as cursor:  # autocommit: CREATE DATABASE cannot run in a transaction
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    return {"DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--chroma-server", action="store_true", help="import into a `chroma run` server")
    args = parser.parse_args()
    postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    data = setup_django("collection" + ("-postgresql" if postgres else ""), IMGSIM_MODEL=MODEL)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction

    if postgres:  # the data dir is new; the server's database is not
        call_command("flush", interactive=False, verbosity=0)

    from gallery import storage
    from gallery.models import Image
    from tests.photos import photo_bytes

    synthetic_library(args.photos, model=MODEL)
    media = settings.MEDIA_ROOT
    # Each original is a tiny JPEG with the photo's number after its end (decoders stop at the
    # end marker): its own bytes, so the SHA-256 that import checks names it. Renditions are
    # hard links to one sample (a file system allows ~65k links to one file).
    base, sample, links, named = photo_bytes(1, size=(64, 48)), None, 0, []
    for pk, image_format in Image.objects.order_by("pk").values_list("pk", "format").iterator(chunk_size=5000):
        content = base + pk.to_bytes(8, "big")
        sha = hashlib.sha256(content).hexdigest()
        original = os.path.join(media, storage.original_relpath(sha, image_format))
        os.makedirs(os.path.dirname(original), exist_ok=True)
        with open(original, "wb") as out_file:
            out_file.write(content)
        named.append((sha, storage.original_relpath(sha, image_format), pk))
        for kind in storage.RENDITIONS:
            target = os.path.join(media, storage.rendition_relpath(sha, kind))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if links % 50_000 == 0:
                sample = storage.write_atomic(f"sample-{links}.jpg", base)
            os.link(sample, target)
            links += 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany("UPDATE gallery_image SET sha256 = %s, file = %s WHERE id = %s", named)
    # No index for the first library: export reads SQLite alone (a reindex took 15 min at a million).
    out = data / "library.json.gz"
    export_s, export_mb = run("export_collection", str(out))
    # Into a second data dir (an empty database and index) that shares the first one's files:
    # deleting a million photos through the ORM to empty the first would take longer than the import.
    empty = data.parent / "collection-imported"
    if empty.exists():
        shutil.rmtree(empty)
    empty.mkdir()
    (empty / "media").symlink_to(media)
    environment = {"IMGSIM_DATA_DIR": str(empty), **_second_database()}
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"],
        cwd=ROOT,
        env={**os.environ, **environment},
        check=True,
    )
    server = None
    if args.chroma_server:
        port = free_port()
        server = chroma_server(empty, port, {**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        environment["CHROMA_URL"] = f"http://127.0.0.1:{port}"
    try:
        import_s, import_mb = run("import_collection", str(out), env=environment)
        server_mb = _peak_mb(server.pid) if server else None
    finally:
        if server:
            server.terminate()
            server.wait(timeout=60)
    again = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "shell",
            "-c",
            "from gallery.models import Image; print(Image.objects.count())",
        ],
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    database = f"PostgreSQL {connection.pg_version // 10000}" if postgres else "SQLite"
    print(
        f"\n{args.photos:,} photos, 512-d vectors, {out.stat().st_size / 1e6:.0f} MB .json.gz, {database}; "
        f"{cpu_model()}, {os.cpu_count()} cores"
    )
    print(
        table(
            ["step", "seconds", "photos/s", "peak RSS MB"],
            [
                ["export_collection", f"{export_s:.1f}", f"{args.photos / export_s:,.0f}", f"{export_mb:.0f}"],
                [
                    "import_collection (incl. index)" + (", into a Chroma server" if server else ""),
                    f"{import_s:.1f}",
                    f"{args.photos / import_s:,.0f}",
                    f"{import_mb:.0f}",
                ],
            ]
            + ([["  the Chroma server meanwhile", "", "", f"{server_mb:.0f}"]] if server else []),
        )
    )
    print(f"rows after import: {int(again.split()[-1]):,}")


if __name__ == "__main__":
    main()
