import os
import re
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from gallery.models import Image, Metadata, Tag
from tests.conftest import ROOT
from tests.photos import write_library

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo(tmp_path, ingest, django_capture_on_commit_callbacks):
    write_library(tmp_path / "in", 1)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(tmp_path / "in")
    return Image.objects.get()


def all_page_urls(image_id: int) -> list[str]:
    return [
        reverse("gallery:index"),
        reverse("gallery:detail", args=[image_id]),
        reverse("gallery:original", args=[image_id]),
        reverse("gallery:rendition", args=[image_id, "thumb"]),
        reverse("gallery:upload"),
        reverse("search:page"),
        reverse("search:similar", args=[image_id]),
        reverse("admin:index"),
    ]


def test_anonymous_users_are_sent_to_login_from_every_page(client, photo):
    for url in all_page_urls(photo.pk):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/login/" in response["Location"], url


def test_health_check_needs_no_login_but_shows_details_only_to_users(client, viewer):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    report = response.json()
    assert report["database"] == {"ok": True} and set(report) == {"ok", "database", "index", "model", "queue"}
    assert all(set(part) == {"ok"} for name, part in report.items() if name != "ok")  # no paths, counts, errors
    client.force_login(viewer)
    detailed = client.get(reverse("healthz")).json()
    assert detailed["database"]["detail"] and "embeddings_pending" in detailed["queue"]


def test_viewer_can_browse_but_not_upload(viewer_client, photo):
    assert viewer_client.get(reverse("gallery:index")).status_code == 200
    assert viewer_client.get(reverse("gallery:detail", args=[photo.pk])).status_code == 200
    assert viewer_client.get(reverse("gallery:upload")).status_code == 403
    assert viewer_client.post(reverse("gallery:upload")).status_code == 403
    # Viewers are not staff: the admin sends them to its login page.
    assert viewer_client.get(reverse("admin:index")).status_code == 302


def test_editor_reaches_upload_and_metadata_admin(editor_client, photo):
    assert editor_client.get(reverse("gallery:upload")).status_code == 200
    assert editor_client.get(reverse("admin:gallery_image_change", args=[photo.pk])).status_code == 200
    # ...but not user management.
    assert editor_client.get(reverse("admin:auth_user_changelist")).status_code == 403


def test_media_view_sets_safe_headers(viewer_client, photo):
    response = viewer_client.get(reverse("gallery:original", args=[photo.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    body = b"".join(response.streaming_content)
    assert body[:2] == b"\xff\xd8"
    thumb = viewer_client.get(reverse("gallery:rendition", args=[photo.pk, "thumb"]))
    assert thumb["Content-Type"] == "image/webp"
    assert viewer_client.get(reverse("gallery:rendition", args=[photo.pk, "nope"])).status_code == 404


def test_admin_list_and_change_pages_render_with_data(client, admin_user, photo):
    client.force_login(admin_user)
    Metadata.objects.filter(image=photo).update(title="Harbour at dawn", category="travel")
    photo.metadata.tags.add(Tag.objects.create(name="boats"))
    listing = client.get(reverse("admin:gallery_image_changelist"), {"q": "harbour"})
    assert listing.status_code == 200
    assert b"Harbour at dawn" in listing.content
    assert reverse("gallery:rendition", args=[photo.pk, "thumb"]).encode() in listing.content
    for filters in ({"category": "travel"}, {"tag": "boats"}, {"format__exact": "JPEG"}):
        page = client.get(reverse("admin:gallery_image_changelist"), filters)
        assert page.status_code == 200 and b"Harbour at dawn" in page.content, filters
    change = client.get(reverse("admin:gallery_image_change", args=[photo.pk]))
    assert change.status_code == 200 and b"metadata-0-title" in change.content
    tags = client.get(reverse("admin:gallery_tag_changelist"))
    assert tags.status_code == 200 and b"boats" in tags.content


def test_the_admin_list_reads_no_column_of_every_photo(client, admin_user, photo):
    """At a million photos the list's date hierarchy and year filter listed the distinct months and years
    of every photo (7.6 s and 5.6 s on every page); the tag list joined every membership (1.4 s)."""
    from datetime import UTC, datetime

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(admin_user)
    Metadata.objects.filter(image=photo).update(taken_at=datetime(2019, 5, 1, tzinfo=UTC))
    photo.metadata.tags.add(Tag.objects.create(name="boats"))
    with CaptureQueriesContext(connection) as ran:
        listing = client.get(reverse("admin:gallery_image_changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "?year=2019" in html and "By added at" in html  # the year filter, and added_at as a filter
    assert not [
        q["sql"] for q in ran.captured_queries if "distinct" in q["sql"].lower() and "_trunc" in q["sql"].lower()
    ]
    assert client.get(reverse("admin:gallery_image_changelist"), {"year": "2019"}).status_code == 200
    for bad_year in ("abc", "99999999999999999999"):  # not every photo, as if the filter were not there
        page = client.get(reverse("admin:gallery_image_changelist"), {"year": bad_year})
        assert page.status_code == 200 and "0 images" in page.content.decode(), bad_year
    Metadata.objects.update(taken_at=None)  # no photo has a date: no year to offer, still none listed
    for year in ("2019", "abc"):
        page = client.get(reverse("admin:gallery_image_changelist"), {"year": year})
        assert page.status_code == 200 and "0 images" in page.content.decode(), year
    tags = client.get(reverse("admin:gallery_tag_changelist"), {"o": "2"}).content.decode()
    assert re.search(r"boats</a></th><td class=\"field-photo_count\">1</td>", tags), tags[-2000:]


def test_duplicate_sha256_is_refused_by_the_database(photo):
    clone = Image(sha256=photo.sha256, file="x", original_name="x", format="JPEG", width=1, height=1, byte_size=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()


def test_constraints_refuse_nonsense(photo):
    with pytest.raises(IntegrityError), transaction.atomic():
        Image.objects.filter(pk=photo.pk).update(width=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Metadata.objects.filter(image=photo).update(latitude=123.0, longitude=5.0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Metadata.objects.filter(image=photo).update(latitude=12.0)  # longitude missing
    with pytest.raises(IntegrityError), transaction.atomic():
        Tag.objects.create(name="Upper")


def test_migrations_are_complete():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_roles_exist_with_their_permissions():
    from django.contrib.auth.models import Group

    editor = Group.objects.get(name="editor")
    assert editor.permissions.filter(codename="edit_library").exists()
    assert not Group.objects.get(name="viewer").permissions.exists()


def test_a_persons_permissions_are_read_in_one_query_and_are_djangos(django_user_model, django_assert_num_queries):
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.auth.models import Group, Permission

    # Permissions of one's own, of a group, of both, of neither; and people who get none read.
    mixed = django_user_model.objects.create_user("mixed")
    mixed.groups.add(Group.objects.get(name="editor"))
    mixed.user_permissions.add(Permission.objects.get(codename="view_logentry"))
    own_only = django_user_model.objects.create_user("own")
    own_only.user_permissions.add(Permission.objects.get(codename="edit_library"))
    nobody = django_user_model.objects.create_user("nobody")
    nobody.groups.add(Group.objects.get(name="viewer"))
    gone = django_user_model.objects.create_user("gone", is_active=False)
    gone.groups.add(Group.objects.get(name="editor"))
    root = django_user_model.objects.create_superuser("root2", password="x")

    def fresh(user):  # a new object each time: no permission cache from before
        return django_user_model.objects.get(pk=user.pk)

    for user, can_edit in [(mixed, True), (own_only, True), (nobody, False)]:
        person = fresh(user)
        with django_assert_num_queries(1):  # Django's own backend reads them in two
            assert person.has_perm("gallery.edit_library") is can_edit
            assert person.has_perm("admin.view_logentry") is (user is mixed)
        assert person.get_all_permissions() == ModelBackend().get_all_permissions(fresh(user))
    assert "gallery.edit_library" in fresh(mixed).get_all_permissions()
    with django_assert_num_queries(0):
        assert not gone.has_perm("gallery.edit_library")
        assert root.has_perm("gallery.edit_library")


def test_sign_in_stays_with_djangos_backend_so_earlier_sessions_stay_valid(client, viewer):
    from django.contrib.auth import BACKEND_SESSION_KEY

    client.post(reverse("login"), {"username": "vera", "password": "pw-vera"})
    assert client.session[BACKEND_SESSION_KEY] == "django.contrib.auth.backends.ModelBackend"
    assert client.get(reverse("gallery:index")).status_code == 200


def _start(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "name, value",
    [
        ("DEBUG", "maybe"),
        ("IMGSIM_UPLOAD_MAX_MB", "lots"),
        ("IMGSIM_PRECISION", "fp8"),
        ("DATABASE_URL", "mysql://x/y"),
        ("CHROMA_URL", "localhost:8000"),
        ("SECRET_KEY", "short"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_variable(tmp_path, name, value):
    result = _start({"IMGSIM_DATA_DIR": str(tmp_path), name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_secret_key_is_generated_once_into_the_data_dir(tmp_path):
    env = {"IMGSIM_DATA_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    assert _start(env).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert _start(env).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        {
            "IMGSIM_DATA_DIR": str(tmp_path),
            "IMGSIM_HTTPS": "true",
            "ALLOWED_HOSTS": "photos.example.com",
            "SECRET_KEY": "x7#k2!pQz9@Lm4$Vn8^Rt1&Wb6*Yc3(Hd5)Jf0_Gs-e+a=u" * 2,
            "DEBUG": "false",
        }
    )
    env.pop("IMGSIM_PLAIN_STATIC", None)  # the test run's own shortcut: production uses the manifest
    # Without collected static files the check fails, naming the fix (every page would be a 500).
    assert subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env).returncode == 0
    missing = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "imgsim.E003" in missing.stderr and "collectstatic" in missing.stderr
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["IMGSIM_DATA_DIR"] = str(tmp_path)
    code = (
        "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='imgsim_site.settings';django.setup();"
        "from django.db import connection;c=connection.cursor();"
        "c.execute('PRAGMA journal_mode');print(c.fetchone()[0]);"
        "c.execute('PRAGMA busy_timeout');print(c.fetchone()[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    mode, timeout_ms = result.stdout.split()
    assert mode == "wal"
    assert int(timeout_ms) >= 5000


def test_login_page_logs_in_and_out(client, viewer):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b"Log in to imgsim" in page.content
    response = client.post(reverse("login"), {"username": "vera", "password": "pw-vera"})
    assert response.status_code == 302
    assert client.get(reverse("gallery:index")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("gallery:index")).status_code == 302


def test_createuser_and_ensure_admin(capsys, django_user_model):
    call_command("ensure_admin")
    assert "Password (shown once" in capsys.readouterr().out
    call_command("ensure_admin")
    assert capsys.readouterr().out == ""  # idempotent
    call_command("createuser", "alice", "--role", "editor")
    alice = django_user_model.objects.get(username="alice")
    assert alice.is_staff and alice.has_perm("gallery.edit_library")
    call_command("createuser", "alice", "--role", "viewer")
    alice = django_user_model.objects.get(username="alice")
    assert not alice.is_staff and not alice.has_perm("gallery.edit_library")


def test_the_docker_build_context_leaves_out_the_virtualenv_and_the_data_dir():
    """Docker's own rule: a path is left out when the last pattern matching it (or a parent) is not a !."""
    from fnmatch import fnmatch
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    patterns = [
        line.strip().rstrip("/")
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def left_out(path: str) -> bool:
        parts = path.split("/")
        verdict = False
        for pattern in patterns:
            negated, pattern = pattern.startswith("!"), pattern.lstrip("!")
            if any(fnmatch("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1)):
                verdict = not negated
        return verdict

    for secret in (".venv/bin/python", "data/secret_key", "data/imgsim.sqlite3", "data/media/originals/ab/x.jpg"):
        assert left_out(secret), secret
    for needed in ("manage.py", "gallery/models.py", "requirements.lock", "static/favicon.svg", "Dockerfile"):
        assert not left_out(needed), needed


def test_every_page_names_a_favicon_that_is_served(viewer_client):
    from django.contrib.staticfiles import finders

    html = viewer_client.get("/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert finders.find("favicon.svg") and "<svg" in open(finders.find("favicon.svg")).read()
