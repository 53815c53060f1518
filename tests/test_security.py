"""The web app as an attacker sees it: every URL, every POST, hostile metadata, password guessing."""

import json
import os
import re
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from gallery.models import Image, Tag
from search.models import DuplicatePair
from tests.conftest import ROOT
from tests.photos import write_library

pytestmark = pytest.mark.django_db(transaction=True)

PUBLIC = {"login", "logout", "healthz"}


def app_urls(image_id: int) -> list[tuple[str, str]]:
    """(name, path) of every named URL of imgsim's own apps, with sample arguments."""
    samples = {"pk": image_id, "kind": "thumb"}
    found = []

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace in ("gallery", "search", "api"):
                    walk(pattern.url_patterns, pattern.namespace + ":")
            elif isinstance(pattern, URLPattern) and pattern.name and pattern.name not in PUBLIC:
                name = namespace + pattern.name
                arguments = {key: samples[key] for key in pattern.pattern.converters}
                found.append((name, reverse(name, kwargs=arguments)))

    walk(get_resolver().url_patterns)
    return found


@pytest.fixture
def photos(tmp_path, ingest):
    write_library(tmp_path / "in", 2)
    ingest(tmp_path / "in")
    return list(Image.objects.order_by("pk"))


def test_every_url_needs_a_login(client, photos):
    urls = app_urls(photos[0].pk)
    assert len(urls) >= 20  # the walk found the apps' URLs
    for name, path in urls + [("admin", reverse("admin:index"))]:
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            if path.startswith("/api/"):
                # 405 for a method the endpoint never takes (nothing is revealed); otherwise 401.
                assert response.status_code in (401, 405), (method, name)
                assert response.json()["error"]
            else:
                assert response.status_code in (302, 405), (method, name, response.status_code)
                if response.status_code == 302:
                    assert "/login/" in response["Location"], (method, name)


WRITES = [
    "gallery:upload",
    "search:duplicates_scan",
    "search:duplicates_resolve",
    "search:duplicates_undo",
    "gallery:trash_restore",
    "gallery:trash_delete",
    "api:upload",
]


def test_viewer_cannot_change_anything(viewer_client, photos):
    for name in WRITES:
        response = viewer_client.post(reverse(name), {"ids": [p.pk for p in photos], "action": "trash"})
        assert response.status_code == 403, name
    response = viewer_client.patch(
        reverse("api:image", args=[photos[0].pk]), json.dumps({"title": "x"}), content_type="application/json"
    )
    assert response.status_code == 403
    assert viewer_client.get(reverse("admin:gallery_image_change", args=[photos[0].pk])).status_code == 302
    assert Image.objects.live().count() == 2 and Image.objects.get(pk=photos[0].pk).metadata.title == ""


def test_csrf_is_enforced_on_every_post_including_htmx_and_session_api(editor, photos):
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    posts = [reverse(name) for name in WRITES] + [
        reverse("search:page"),
        reverse("profile"),
        reverse("api:search"),
        reverse("logout"),
    ]
    for path in posts:
        for headers in ({}, {"HX-Request": "true"}):
            response = client.post(path, {"q": "x", "action": "create", "name": "t"}, headers=headers)
            assert response.status_code == 403, (path, headers)
    response = client.patch(
        reverse("api:image", args=[photos[0].pk]), json.dumps({"title": "x"}), content_type="application/json"
    )
    assert response.status_code == 403
    # With the token from the page, the same request goes through: the check is CSRF, not the role.
    page = client.get(reverse("profile"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    created = client.post(
        reverse("profile"),
        {"action": "create", "name": "t", "csrfmiddlewaretoken": token},
        headers={"HX-Request": "true"},
    )
    assert created.status_code == 302  # Post/Redirect/Get: reloading the page cannot create a second token
    shown = client.get(created["Location"]).content.decode()
    assert 'id="new-token">imgsim_' in shown
    assert 'id="new-token"' not in client.get(created["Location"]).content.decode()  # shown once


def test_api_tokens_act_only_as_their_user(client, viewer, editor, photos):
    from imgsim_site.models import ApiToken
    from imgsim_site.tokens import token_create

    _, viewer_key = token_create(user=viewer, name="v")
    editor_token, _ = token_create(user=editor, name="e")
    auth = {"Authorization": f"Bearer {viewer_key}"}
    response = client.patch(
        reverse("api:image", args=[photos[0].pk]),
        json.dumps({"title": "x"}),
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 403  # a viewer's token has a viewer's rights
    client.force_login(viewer)
    client.post(reverse("profile"), {"action": "revoke", "token": editor_token.pk})
    assert ApiToken.objects.filter(pk=editor_token.pk).exists()  # not someone else's token


HOSTILE = {
    "title": "<script>alert('title')</script>",
    "description": '" onerror="alert(1)',
    "location": "javascript:alert(1)",
    "category": "<img src=x onerror=alert(2)>",
    "camera_model": "<script>alert('camera')</script>",
}


def _assert_escaped(html: str, where: str) -> None:
    assert "<script>alert(" not in html, where
    assert "<img src=x onerror" not in html, where
    assert not re.search(r'(href|src|action)\s*=\s*["\']?\s*javascript:', html, re.I), where
    assert '" onerror="alert(1)' not in html, where


def test_hostile_metadata_is_escaped_everywhere(editor_client, photos):
    for image in photos:
        meta = image.metadata
        for field, value in HOSTILE.items():
            setattr(meta, field, value)
        meta.save()
        meta.tags.add(Tag.objects.get_or_create(name='<b onmouseover="alert(3)">')[0])
    a, b = photos
    DuplicatePair.objects.create(image_a=a, image_b=b, tier="near", similarity=0.97, hamming=3)
    pages = {
        "gallery": reverse("gallery:index"),
        "detail": reverse("gallery:detail", args=[a.pk]),
        "search": reverse("search:page") + "?q=%3Cscript%3Ealert(%27q%27)%3C%2Fscript%3E",
        "similar": reverse("search:similar", args=[a.pk]),
        "duplicates": reverse("search:duplicates"),
        "stats": reverse("gallery:stats"),
        "admin list": reverse("admin:gallery_image_changelist"),
        "admin change": reverse("admin:gallery_image_change", args=[a.pk]),
        "admin tags": reverse("admin:gallery_tag_changelist"),
    }
    for where, path in pages.items():
        response = editor_client.get(path)
        assert response.status_code == 200, where
        html = response.content.decode()
        _assert_escaped(html, where)
        assert '<b onmouseover="alert(3)">' not in html, where
    assert "&lt;script&gt;alert(" in editor_client.get(pages["detail"]).content.decode()  # shown, as text
    response = editor_client.get(reverse("api:image", args=[a.pk]))
    assert response["Content-Type"] == "application/json"
    assert response.json()["metadata"]["title"] == HOSTILE["title"]  # data, exactly; JSON is not HTML


def test_password_guessing_is_rate_limited(client, viewer):
    login = reverse("login")
    for _ in range(4):
        response = client.post(login, {"username": "vera", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    response = client.post(login, {"username": "vera", "password": "wrong"})  # the fifth locks
    assert response.status_code == 429 and "Too many failed login attempts" in response.content.decode()
    # Locked even with the right password, until the cool-off passes.
    assert client.post(login, {"username": "vera", "password": "pw-vera"}).status_code == 429
    other = Client(REMOTE_ADDR="10.0.0.9")  # another address is not locked out
    assert other.post(login, {"username": "vera", "password": "pw-vera"}).status_code == 302


def test_production_settings_send_the_security_headers(tmp_path):
    code = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz', secure=True); "
        "print(r.status_code, '|', r.get('Strict-Transport-Security'), '|', r.get('Referrer-Policy'), '|', "
        "r.get('X-Frame-Options'), '|', r.get('X-Content-Type-Options'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        {
            "IMGSIM_HTTPS": "true",
            "DJANGO_SETTINGS_MODULE": "imgsim_site.settings",
            "ALLOWED_HOSTS": "testserver",
            "SECRET_KEY": "x7#k2!pQz9@Lm4$Vn8^Rt1&Wb6*Yc3(Hd5)Jf0_Gs-e+a=u" * 2,
            "IMGSIM_DATA_DIR": str(tmp_path),
        }
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    status, hsts, referrer, frames, sniff = [part.strip() for part in out.stdout.strip().splitlines()[-1].split("|")]
    assert status == "200"  # even on a database not migrated yet: /healthz reports, it does not crash
    # Subdomains and preload reach beyond this app: opt-in (IMGSIM_HSTS_SUBDOMAINS, IMGSIM_HSTS_PRELOAD).
    assert hsts == "max-age=31536000"
    assert (referrer, frames, sniff) == ("same-origin", "DENY", "nosniff")


def test_failures_while_locked_do_not_extend_the_lock(client, viewer):
    from axes.models import AccessAttempt

    login = reverse("login")
    for _ in range(5):
        client.post(login, {"username": "vera", "password": "wrong"})
    locked_at = AccessAttempt.objects.get(username="vera").attempt_time
    assert client.post(login, {"username": "vera", "password": "wrong"}).status_code == 429
    assert AccessAttempt.objects.get(username="vera").attempt_time == locked_at  # the cool-off still ends on time


def test_spraying_one_password_over_many_usernames_is_limited_per_address(client, settings):
    settings.IMGSIM_LOGIN_FAILURES_PER_ADDRESS = 12
    login = reverse("login")
    statuses = [client.post(login, {"username": f"user{i}", "password": "Summer2026!"}).status_code for i in range(14)]
    assert statuses[:12] == [200] * 12 and statuses[12:] == [429, 429]
    assert Client(REMOTE_ADDR="10.0.0.8").post(login, {"username": "user0", "password": "x"}).status_code == 200


def test_behind_a_proxy_each_client_has_its_own_lock(viewer, settings):
    settings.IMGSIM_BEHIND_PROXY = True
    login = reverse("login")
    proxy = {"REMOTE_ADDR": "172.18.0.2"}  # every request comes from the proxy
    mallory = Client(HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy)
    for _ in range(5):
        mallory.post(login, {"username": "vera", "password": "wrong"})
    assert mallory.post(login, {"username": "vera", "password": "pw-vera"}).status_code == 429
    vera = Client(HTTP_X_FORWARDED_FOR="198.51.100.4", **proxy)
    assert vera.post(login, {"username": "vera", "password": "pw-vera"}).status_code == 302
    # A client cannot pick its address: the proxy appends the real one last.
    forged = Client(HTTP_X_FORWARDED_FOR="198.51.100.4, 203.0.113.9", **proxy)
    assert forged.post(login, {"username": "vera", "password": "pw-vera"}).status_code == 429
