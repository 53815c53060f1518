"""An image ingested by one process is found by another, long-running one within 2 s."""

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.photos import write_library
from tests.processes import manage, project_env

pytestmark = pytest.mark.slow


def check_visibility(tmp_path, env):
    write_library(tmp_path / "first", 4)
    write_library(tmp_path / "second", 5, start=100)
    manage(env, "migrate", "-v0")
    manage(env, "ingest", str(tmp_path / "first"), "--no-progress")
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.search_process"],
        cwd=ROOT,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def search() -> list[int]:
        server.stdin.write("photo\n")
        server.stdin.flush()
        line = server.stdout.readline()
        assert line, server.stderr.read()
        return json.loads(line)

    try:
        assert len(search()) == 4
        manage(env, "ingest", str(tmp_path / "second"), "--no-progress")
        ingested_at = time.monotonic()
        found = search()
        while len(found) < 9 and time.monotonic() - ingested_at < 2.0:
            time.sleep(0.05)
            found = search()
        assert len(found) == 9, f"the running process found {len(found)} of 9 photos within 2 s"
        manage(env, "shell", "-c", "from gallery.models import Image; Image.objects.order_by('pk').first().delete()")
        assert len(search()) == 8  # deletions are seen too
    finally:
        server.stdin.close()
        server.terminate()
        server.wait(timeout=10)


def test_embedded_index_sees_another_process_writes(tmp_path, tiny_model):
    check_visibility(tmp_path, project_env(tmp_path, tiny_model))


def test_chroma_server_index_sees_another_process_writes(tmp_path, tiny_model, chroma_server):
    env = project_env(tmp_path, tiny_model, chroma_server)
    check_visibility(tmp_path, env)
    manage(env, "reconcile")  # the server holds exactly what SQLite says
    assert "Nothing to fix." in manage(env, "reconcile").stdout
