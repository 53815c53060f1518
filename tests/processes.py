"""Running imgsim's own commands in child processes, as a user or a crash would."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT


def project_env(tmp_path, tiny_model, chroma_url=None) -> dict:
    """Environment for a child process with its own data dir under tmp_path and the tiny model."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        {
            "IMGSIM_DATA_DIR": str(tmp_path / "data"),
            "IMGSIM_MODEL": tiny_model,
            "HF_HUB_OFFLINE": "1",
            "IMGSIM_PRECISION": "fp32",
        }
    )
    if chroma_url:
        env["CHROMA_URL"] = chroma_url
    return env


def manage(env, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `manage.py ARGS` and insist it succeeds."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def library_consistency_check(count: int) -> str:
    """Code for `manage.py shell -c`: every photo once, the index equal to SQLite, files complete, DB sound."""
    return (
        "from gallery.models import Image; from gallery import storage; from search.index import get_index;"
        "from search.embeddings import model_name;"
        "rows = list(Image.objects.values_list('pk', 'original_name'));"
        f"names = [n for _, n in rows]; assert len(names) == len(set(names)) == {count}, len(names);"
        "ids = {int(i) for i in get_index().ids(model_name())};"
        "assert ids == {pk for pk, _ in rows}, (len(ids), len(rows));"
        "assert all(p.exists() for i in Image.objects.all() for p in storage.image_files(i));"
        f"files = {{p for _, p in storage.stored_files()}}; assert len(files) == {count} * 3, len(files);"
        "from django.db import connection; c = connection.cursor(); c.execute('PRAGMA integrity_check');"
        "assert c.fetchone()[0] == 'ok'; print('consistent')"
    )


def wait_for_count(env, sql: str, *, at_least: int, process=None, timeout: float = 180) -> int | None:
    """Poll the child's SQLite database until `sql` counts at least this many; return the count.

    Returns None if the process exits first. Kill tests use it to strike mid-work,
    when a known amount is done, instead of after a sleep that a faster or slower
    machine turns into "before the start" or "after the end".
    """
    database = Path(env["IMGSIM_DATA_DIR"]) / "imgsim.sqlite3"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return None
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
                count = db.execute(sql).fetchone()[0]
        except sqlite3.OperationalError:  # not created yet, or busy
            count = -1
        if count >= at_least:
            return count
        time.sleep(0.02)
    raise AssertionError(f"{sql!r} did not reach {at_least} in {timeout} s")
