import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from gallery.models import Image, Metadata, Tag
from search.python_api import get_stats
from tests.photos import write_photo

pytestmark = pytest.mark.django_db(transaction=True)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def library(tmp_path, ingest):
    sizes = [(640, 480), (640, 480), (1200, 800), (2400, 1600)]
    for i, size in enumerate(sizes):
        write_photo(tmp_path / "in" / f"p{i}.jpg", i, size=size)
    write_photo(tmp_path / "in" / "p4.png", 4, size=(300, 200), fmt="PNG")
    ingest(tmp_path / "in")
    sea = Tag.objects.create(name="sea")
    for i, meta in enumerate(Metadata.objects.order_by("image__original_name")):
        meta.category = "travel" if i < 3 else "family"
        meta.camera_model = "EOS R5" if i < 2 else ""
        meta.taken_at = datetime(2024, 1 + i % 2, 15, tzinfo=UTC)
        meta.save()
        if i == 0:
            meta.tags.add(sea)
    return list(Image.objects.order_by("original_name"))


def test_numbers_match_the_library(library):
    stats = get_stats()
    widths = [i.width for i in library]
    assert stats["total_images"] == 5
    assert stats["total_bytes"] == sum(i.byte_size for i in library)
    assert stats["avg_width"] == round(sum(widths) / 5, 1)
    assert stats["formats"] == {"JPEG": 4, "PNG": 1}
    assert stats["embedded"] == 5 and stats["pending"] == 0 and stats["failed"] == 0
    assert stats["embedding_dimension"] == 32
    assert stats["index"] == {"expected": 5, "actual": 5, "in_sync": True, "error": ""}
    assert stats["trash_count"] == 0


def test_the_numbers_never_open_an_embedded_index_in_the_asking_process(library, monkeypatch, viewer_client):
    """Any read of an embedded Chroma collection loads its whole graph into the process (2.5 GB at a
    million photos): the statistics and /healthz count from imgsim's record of what it wrote there."""
    from django.core.cache import caches

    from search.index import ChromaIndex, get_index
    from search.models import IndexedEntry

    assert get_index().mode == "embedded"
    monkeypatch.setattr(ChromaIndex, "client", lambda self: pytest.fail("opened the embedded index"))
    assert viewer_client.get(reverse("healthz")).json()["index"] == {"ok": True, "mode": "embedded", "vectors": 5}
    assert get_stats()["index"] == {"expected": 5, "actual": 5, "in_sync": True, "error": ""}
    IndexedEntry.objects.filter(image_id=library[0].pk).delete()  # a write imgsim has no record of
    caches["shared"].clear()
    assert get_stats()["index"]["in_sync"] is False
    assert "Run <code>python manage.py reconcile</code>" in viewer_client.get(reverse("gallery:stats")).content.decode()


def test_cache_follows_changes(library):
    from gallery.stats import get_stats

    stats = get_stats()
    assert stats["trash_count"] == 0 and [(name, n) for name, n, _ in stats["charts"]["tags"]] == [("sea", 1)]
    Tag.objects.create(name="unused")
    library[0].trashed_at = datetime.now(UTC)  # the photo tagged sea
    library[0].save()
    stats = get_stats()
    assert stats["trash_count"] == 1 and stats["total_images"] == 4
    assert stats["charts"]["tags"] == []  # a trashed photo's tags and an unused tag are not counted


def test_page_draws_well_formed_linked_charts(viewer_client, library):
    response = viewer_client.get(reverse("gallery:stats"))
    html = response.content.decode()
    assert response.status_code == 200 and "5</strong> photos" in html
    svgs = [
        html[start : html.index("</svg>", start) + 6]
        for start in [i for i in range(len(html)) if html.startswith("<svg", i)]
    ]
    assert len(svgs) == 5
    links = []
    for svg in svgs:
        root = ET.fromstring(svg)  # well-formed XML
        links += [a.get("href") for a in root.iter(f"{SVG}a")]
    assert "/?category=travel" in links and "/?camera=EOS+R5" in links and "/?tag=sea" in links
    assert "/?taken_from=2024-01-01&taken_to=2024-01-31" in links
    travel = viewer_client.get("/?category=travel").content.decode()
    assert travel.count('class="card-photo"') == 3  # a chart link lands on the right photos


def test_a_chroma_server_out_of_step_shows_a_warning(viewer_client, chroma_server, settings, tmp_path, ingest):
    """A server holds the graph itself: the page asks it how many vectors it holds (an embedded
    index answers from imgsim's record, test_the_numbers_never_open_an_embedded_index...)."""
    from django.core.cache import caches

    from search.embeddings import model_name
    from search.index import get_index

    settings.IMGSIM_INDEX = {**settings.IMGSIM_INDEX, "OPTIONS": {"url": chroma_server, "path": None}}
    get_index.cache_clear()
    for i in range(3):
        write_photo(tmp_path / "in" / f"p{i}.jpg", i, size=(96, 72))
    ingest(tmp_path / "in")
    assert get_stats()["index"] == {"expected": 3, "actual": 3, "in_sync": True, "error": ""}
    get_index().delete(model_name(), [Image.objects.first().pk])  # lost behind imgsim's back
    caches["shared"].clear()
    html = viewer_client.get(reverse("gallery:stats")).content.decode()
    assert "holds 2 vectors where SQLite expects 3" in html and "manage.py reconcile" in html


def test_stats_need_a_login(client):
    assert client.get(reverse("gallery:stats")).status_code == 302


def test_page_answers_at_once_after_a_change_and_catches_up(viewer_client, library):
    from gallery.stats import get_stats, wait_for_refresh

    assert "5</strong> photos" in viewer_client.get(reverse("gallery:stats")).content.decode()
    library[0].trashed_at = datetime.now(UTC)
    library[0].save()
    html = viewer_client.get(reverse("gallery:stats")).content.decode()
    assert "5</strong> photos" in html and "being updated" in html  # the previous numbers, marked
    assert get_stats()["total_images"] == 4  # the Python API is always current
    wait_for_refresh()
    html = viewer_client.get(reverse("gallery:stats")).content.decode()
    assert "4</strong> photos" in html and "being updated" not in html


def test_a_large_librarys_first_numbers_are_counted_while_the_page_says_so(viewer_client, library, monkeypatch):
    """A million photos take seconds to count the first time: the page answers at once and asks again."""
    import threading

    from gallery import stats

    monkeypatch.setattr(stats, "FIRST_IN_BACKGROUND_ABOVE", 4)  # these 5 photos are a large library
    counting, go_on = threading.Event(), threading.Event()
    compute = stats._compute

    def held_back(**options):
        counting.set()
        assert go_on.wait(timeout=60)
        return compute(**options)

    monkeypatch.setattr(stats, "_compute", held_back)
    page = viewer_client.get(reverse("gallery:stats"))
    html = page.content.decode()
    assert page.status_code == 200 and "Counting the library's photos" in html and "</strong> photos" not in html
    assert 'hx-trigger="every 2s"' in html  # it asks again by itself
    assert counting.wait(timeout=60)  # meanwhile a thread counts them
    go_on.set()
    stats.wait_for_refresh()
    html = viewer_client.get(reverse("gallery:stats")).content.decode()
    assert "5</strong> photos" in html and "Counting" not in html and "every 2s" not in html


def test_a_failed_first_count_is_said_on_the_page_and_tried_again(viewer_client, library, monkeypatch):
    from gallery import stats

    monkeypatch.setattr(stats, "FIRST_IN_BACKGROUND_ABOVE", 4)
    compute = stats._compute

    def broken(**options):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(stats, "_compute", broken)
    viewer_client.get(reverse("gallery:stats"))  # starts the count, which fails
    stats.wait_for_refresh()
    html = viewer_client.get(reverse("gallery:stats")).content.decode()
    assert 'role="alert"' in html and "(RuntimeError)" in html and "every 2s" in html
    assert "went away" not in html  # the error's message stays in the server's log
    stats.wait_for_refresh()  # the count that page started failed too
    monkeypatch.setattr(stats, "_compute", compute)
    viewer_client.get(reverse("gallery:stats"))  # the next poll starts a count that succeeds
    stats.wait_for_refresh()
    html = viewer_client.get(reverse("gallery:stats")).content.decode()
    assert "5</strong> photos" in html and "RuntimeError" not in html
    assert stats.last_failure() == ""


def test_a_small_librarys_first_numbers_are_counted_for_the_page_itself(viewer_client, library, monkeypatch):
    from gallery import stats

    monkeypatch.setattr(stats, "FIRST_IN_BACKGROUND_ABOVE", 5)  # 5 photos: counted while the page waits
    html = viewer_client.get(reverse("gallery:stats")).content.decode()
    assert "5</strong> photos" in html and "Counting" not in html


def test_expired_numbers_of_an_unchanged_library_are_not_called_stale(viewer_client, library):
    from django.core.cache import caches

    from gallery.stats import stats_key, wait_for_refresh

    viewer_client.get(reverse("gallery:stats"))
    short_lived = [stats_key(charts=True)]
    assert all(caches["shared"].get(key) is not None for key in short_lived)
    caches["shared"].delete_many(short_lived)  # as if its 5 minutes had passed
    html = viewer_client.get(reverse("gallery:stats")).content.decode()
    assert "5</strong> photos" in html and "being updated" not in html  # same library: current, not stale
    wait_for_refresh()


def test_each_width_bar_links_to_the_photos_it_counts(library, viewer_client):
    from gallery.stats import WIDTH_BUCKETS
    from gallery.stats import get_stats as library_stats

    charts = library_stats(charts=True)["charts"]
    for (label, count, href), (low, high) in zip(charts["widths"], WIDTH_BUCKETS):
        page = viewer_client.get(href).content.decode()
        expected = sum(1 for image in library if image.width >= low and (high is None or image.width < high))
        assert count == expected and page.count('class="card-photo"') == expected, label


@pytest.mark.slow
def test_a_process_started_later_shows_the_numbers_another_computed(tmp_path, tiny_model):
    """At a million photos they take seconds to compute: a restarted or second web process shows the
    latest numbers at once (marked as being updated if the library changed since) instead of waiting."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.processes import manage, project_env

    env = project_env(tmp_path, tiny_model)
    for i in range(3):
        write_photo(tmp_path / "in" / f"p{i}.jpg", i, size=(96, 72))
    manage(env, "migrate", "-v0")
    manage(env, "ingest", str(tmp_path / "in"), "--no-progress")
    show = (
        "import django; django.setup(); from gallery import stats;"
        "stats._compute = (lambda **kw: {'total_images': -1}) if {never} else stats._compute;"
        "print(stats.get_stats(allow_stale=True)['total_images'])"
    )

    def numbers(*, compute: bool) -> str:
        code = show.replace("{never}", str(not compute))
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "imgsim_site.settings"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert numbers(compute=True) == "3"
    assert numbers(compute=False) == "3"  # found: this process's own computation would have said -1
