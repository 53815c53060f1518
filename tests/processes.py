"""Running imgsim's own commands in child processes, as a user or a crash would."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def project_env(tmp_path, tiny_model, chroma_url=None) -> dict:
    """Environment for a child process with its own data dir under tmp_path and the tiny model."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"IMGSIM_DATA_DIR": str(tmp_path / "data"), "IMGSIM_MODEL": tiny_model, "HF_HUB_OFFLINE": "1",
                "IMGSIM_PRECISION": "fp32"})
    if chroma_url:
        env["CHROMA_URL"] = chroma_url
    return env


def manage(env, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `manage.py ARGS` and insist it succeeds."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
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
