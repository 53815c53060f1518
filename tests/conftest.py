import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from tests.tiny_models import build_tiny_clip

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items):
    """Slow tests (child processes, servers) first: with pytest-xdist each worker starts on one, not both at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep a test's captured output sendable: pytest-xdist cannot send a lone surrogate and ends the worker.

    A log line holding a file name that is not UTF-8 is enough (shown with such a line
    logged in a passing test: "INTERNALERROR ... DumpError: strings must be utf-8 encodable").
    """
    report = yield
    report.sections = [
        (title, text.encode("utf-8", "backslashreplace").decode("utf-8")) for title, text in report.sections
    ]
    return report


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """Folder of a tiny random CLIP saved with save_pretrained (no network)."""
    return str(build_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip"))


def _reset_backends():
    from search.columns import column_cache
    from search.embeddings import get_embedder
    from search.index import get_index

    column_cache.clear()
    from django.core.cache import caches

    for cache in caches.all():  # stats, grids, cards, query vectors: keyed by versions that restart per database
        cache.clear()
    if get_index.cache_info().currsize:
        get_index().refresh()
    get_index.cache_clear()
    get_embedder.cache_clear()


@pytest.fixture(autouse=True)
def isolated(settings, tmp_path, tiny_model):
    """Every test gets its own media folder, Chroma folder and the tiny model."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMGSIM_VECTOR_DIR = tmp_path / "vectors"
    settings.IMGSIM_MODEL = tiny_model
    settings.IMGSIM_EMBEDDER = {
        **settings.IMGSIM_EMBEDDER,
        "OPTIONS": {**settings.IMGSIM_EMBEDDER["OPTIONS"], "model": tiny_model, "precision": "fp32"},
    }
    settings.IMGSIM_INDEX = {**settings.IMGSIM_INDEX, "OPTIONS": {"path": str(tmp_path / "chroma"), "url": None}}
    _reset_backends()
    yield tmp_path
    _reset_backends()


class _RequestsInFlight:
    """Counts the live server's connections from accept to close (patched onto its socketserver)."""

    def __init__(self, httpd):
        self.count = 0
        self.changed = threading.Condition()
        accept, serve = httpd.process_request, httpd.process_request_thread

        def counted_done():
            with self.changed:
                self.count -= 1
                self.changed.notify_all()

        def counted_accept(request, client_address):
            with self.changed:
                self.count += 1
            try:
                accept(request, client_address)
            except BaseException:
                counted_done()
                raise

        def counted_serve(request, client_address):
            try:
                serve(request, client_address)
            finally:
                counted_done()

        httpd.process_request, httpd.process_request_thread = counted_accept, counted_serve

    def wait_until_idle(self, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count == 0, timeout)


@pytest.fixture(autouse=True)
def live_server_drained(request, isolated):
    """A live-server test ends only once the server has answered every request its browser made.

    Closing a browser context abandons the requests it had in flight (thumbnails, htmx
    polls) but the server still answers them. Answered after the test, they would
    meet a database pytest-django has already closed or flushed, or the next test's
    settings: 500s in the next test's log, and a worker that can die on it.
    """
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so torn down after this
    httpd = request.getfixturevalue("live_server").thread.httpd
    if not hasattr(httpd, "in_flight"):
        httpd.in_flight = _RequestsInFlight(httpd)
    yield
    if "browser" in request.fixturenames:
        for context in request.getfixturevalue("browser").contexts:
            context.close()
    if not httpd.in_flight.wait_until_idle(timeout=30):
        pytest.fail(f"the live server still serves {httpd.in_flight.count} requests 30 s after the test")


@pytest.fixture
def pixel_embedder(settings):
    """The deterministic pixel embedder (tests/embedders.py), not the tiny CLIP: duplicates behave as on photos."""
    from search.embeddings import get_embedder

    settings.IMGSIM_EMBEDDER = {"BACKEND": "tests.embedders.PixelEmbedder", "OPTIONS": {}}
    settings.IMGSIM_MODEL = "test/pixel-embedder"
    get_embedder.cache_clear()


def _user(django_user_model, username: str, role: str | None, **extra):
    user = django_user_model.objects.create_user(username, password="pw-" + username, **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(django_user_model):
    return _user(django_user_model, "vera", "viewer")


@pytest.fixture
def editor(django_user_model):
    return _user(django_user_model, "eddie", "editor", is_staff=True)


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-root")


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client


@pytest.fixture
def ingest():
    """Run the real pipeline over a folder; return the report."""
    from gallery.ingest import Pipeline, discover

    def run(folder, **options):
        sources, skipped = discover(Path(folder), recursive=options.pop("recursive", True))
        report = Pipeline(**options).run(sources)
        report.outcomes[:0] = skipped
        return report

    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_chroma(folder: Path, port: int, log_path: Path) -> subprocess.Popen:
    """Start a real `chroma run` server on a loopback port; return once it accepts connections."""
    chroma = Path(sys.executable).parent / "chroma"
    log = open(log_path, "a")
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)  # polling until it listens
    process.kill()
    raise RuntimeError("chroma run did not start: " + log_path.read_text())


@pytest.fixture
def chroma_server(tmp_path):
    """A real `chroma run` server on a free loopback port; yields its URL."""
    port = free_port()
    process = start_chroma(tmp_path / "chroma-server", port, tmp_path / "chroma.log")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls that
    # fixtures make meanwhile are still plain synchronous calls. Set only here: the
    # variable must not leak into other tests (check --deploy refuses it).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _launch()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _launch():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: the test command installs it (scripts/run-tests)")
        pytest.skip("chromium is not installed; run scripts/run-tests to install it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()
