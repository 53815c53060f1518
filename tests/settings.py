"""Settings for the test suite: the real settings, pointed at a throwaway data dir."""

import atexit
import os
import shutil
import tempfile

if "IMGSIM_DATA_DIR" not in os.environ:
    # Processes started by this one (xdist workers, commands under test) inherit the folder; the
    # process that made it removes it when it ends.
    os.environ["IMGSIM_DATA_DIR"] = tempfile.mkdtemp(prefix="imgsim-test-")
    atexit.register(shutil.rmtree, os.environ["IMGSIM_DATA_DIR"], ignore_errors=True)
os.environ.setdefault("IMGSIM_PLAIN_STATIC", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download anything
os.environ.setdefault("IMGSIM_PRECISION", "fp32")
os.environ.setdefault("IMGSIM_SEARCH_PASS", "fp16")  # the int8 pass and its measurement have tests of their own

from imgsim_site.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# No retry threads outliving a test that broke the index on purpose (the retry has a test of its own).
IMGSIM_INDEX_RETRY_SECONDS = 0
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - whitenoise warns about a missing folder

# A real database file (WAL, busy timeout), not the in-memory shared cache Django
# uses by default for tests: the live-server tests write from several threads at
# once, as production does.
DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}  # noqa: F405

# xdist workers share the data dir but not their databases: each keeps its own shared
# cache, so a test that clears it never wipes the numbers another worker's test just cached.
# (Commands a test starts inherit PYTEST_XDIST_WORKER, and so the folder.)
CACHES["shared"]["LOCATION"] = str(DATA_DIR / "cache" / os.environ.get("PYTEST_XDIST_WORKER", "main"))  # noqa: F405

# IMGSIM_TEST_DATABASE_URL (set by `IMGSIM_TEST_POSTGRES=1 bash scripts/run-tests`):
# the same suite against a real PostgreSQL server.
if os.environ.get("IMGSIM_TEST_DATABASE_URL"):
    from imgsim_site.databases import postgres_database

    DATABASES = {"default": postgres_database(os.environ["IMGSIM_TEST_DATABASE_URL"])}
