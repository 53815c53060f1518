"""The JSON API: tokens, auth, CSRF, every endpoint, every error status, the OpenAPI description."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from gallery.models import Image
from gallery.services import image_restore
from imgsim_site.openapi import ERROR, RESULT, document
from search.embeddings import get_embedder
from search.python_api import find_similar
from tests.photos import photo_bytes, write_library

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def library(tmp_path, ingest):
    write_library(tmp_path / "in", 6, size=(96, 72))
    ingest(tmp_path / "in")
    return list(Image.objects.order_by("pk"))


def token_for(user) -> str:
    client = Client()
    client.force_login(user)
    page = client.post("/profile/", {"action": "create", "name": "script"}, follow=True).content.decode()
    return page.split('<pre id="new-token">')[1].split("</pre>")[0]


@pytest.fixture
def editor_token(editor):
    return token_for(editor)


@pytest.fixture
def viewer_token(viewer):
    return token_for(viewer)


def call(method: str, url: str, token: str | None = None, body=None, **extra):
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if method == "get" or "data" in extra:  # query string or multipart
        return getattr(client, method)(url, **extra, **headers)
    return getattr(client, method)(url, data=json.dumps(body or {}), content_type="application/json", **headers)


def assert_error(response, status: int):
    assert response.status_code == status, response.content
    assert set(ERROR["required"]) <= set(response.json()) and response.json()["status"] == status


def test_tokens_are_shown_once_stored_hashed_and_revocable(editor, editor_token, library):
    from imgsim_site.models import ApiToken

    token = ApiToken.objects.get(user=editor)
    assert editor_token.startswith("imgsim_") and editor_token not in (token.key_hash, token.prefix)
    assert call("get", "/api/stats", editor_token).status_code == 200
    client = Client()
    client.force_login(editor)
    page = client.get("/profile/").content.decode()
    assert editor_token not in page and token.prefix in page
    client.post("/profile/", {"action": "revoke", "token": token.pk})
    assert_error(call("get", "/api/stats", editor_token), 401)


def test_creating_a_token_redirects_so_a_reload_makes_no_second_one(editor):
    from imgsim_site.models import ApiToken

    client = Client()
    client.force_login(editor)
    created = client.post("/profile/", {"action": "create", "name": "script"})
    assert created.status_code == 302 and created["Location"] == "/profile/"
    shown = client.get("/profile/").content.decode()
    assert '<pre id="new-token">' in shown and ApiToken.objects.filter(user=editor).count() == 1
    reloaded = client.get("/profile/").content.decode()  # what a reload of the page after the redirect asks
    assert '<pre id="new-token">' not in reloaded and ApiToken.objects.filter(user=editor).count() == 1


def test_anonymous_gets_401_json_not_a_login_page(library):
    for method, url in (("get", "/api/stats"), ("post", "/api/search"), ("get", f"/api/images/{library[0].pk}")):
        assert_error(call(method, url), 401)
    assert_error(call("get", "/api/stats", "imgsim_not-a-real-token"), 401)


def test_session_writes_need_csrf(viewer, library):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    body = json.dumps({"query": "cat"})
    refused = client.post("/api/search", body, content_type="application/json")
    assert_error(refused, 403)
    client.get("/search/")  # sets the CSRF cookie, as the pages do
    allowed = client.post(
        "/api/search", body, content_type="application/json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )
    assert allowed.status_code == 200


def test_search_by_text_image_id_and_upload(viewer_token, library):
    response = call("post", "/api/search", viewer_token, {"query": "red car", "top_k": 4, "threshold": -1})
    results = response.json()["results"]
    assert [r["id"] for r in results] == [r["id"] for r in find_similar(query_text="red car", top_k=4, threshold=-1)]
    assert results[0]["path"].startswith("http://testserver/images/") and "similarity" in results[0]
    by_id = call("post", "/api/search", viewer_token, {"image_id": library[2].pk, "top_k": 3}).json()["results"]
    assert library[2].pk not in [r["id"] for r in by_id] and len(by_id) == 3
    upload = SimpleUploadedFile("q.jpg", photo_bytes(3, size=(96, 72)), content_type="image/jpeg")
    found = call("post", "/api/search", viewer_token, data={"image": upload, "top_k": 1}).json()["results"]
    assert found[0]["filename"] == "photo_0003.jpg"
    filtered = call("post", "/api/search", viewer_token, {"query": "x", "filters": {"format": "PNG"}})
    assert filtered.json()["results"] == []


def test_search_errors(viewer_token, library, settings):
    assert_error(call("post", "/api/search", viewer_token, {"query": "x", "filters": {"colour": "red"}}), 400)
    assert_error(call("post", "/api/search", viewer_token, {}), 400)
    assert_error(call("post", "/api/search", viewer_token, {"query": "x", "top_k": "many"}), 400)
    assert_error(
        Client().post(
            "/api/search", "{not json", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {viewer_token}"
        ),
        400,
    )
    text = SimpleUploadedFile("q.jpg", b"hello", content_type="image/jpeg")
    assert_error(call("post", "/api/search", viewer_token, data={"image": text}), 415)
    settings.IMGSIM_UPLOAD_MAX_BYTES = 10
    big = SimpleUploadedFile("q.jpg", photo_bytes(3, size=(96, 72)), content_type="image/jpeg")
    assert_error(call("post", "/api/search", viewer_token, data={"image": big}), 413)
    assert_error(call("get", "/api/search", viewer_token), 405)
    settings.IMGSIM_EMBEDDER = {
        **settings.IMGSIM_EMBEDDER,
        "OPTIONS": {**settings.IMGSIM_EMBEDDER["OPTIONS"], "model": "/nonexistent/model"},
    }
    get_embedder.cache_clear()
    unavailable = call("post", "/api/search", viewer_token, {"query": "x"})
    assert_error(unavailable, 503)
    assert "IMGSIM_MODEL" in unavailable.json()["error"]


def test_images_get_and_patch(viewer_token, editor_token, library):
    url = f"/api/images/{library[0].pk}"
    got = call("get", url, viewer_token).json()
    assert got["id"] == library[0].pk and set(RESULT["required"]) <= set(got)
    assert_error(call("get", "/api/images/999999", viewer_token), 404)
    assert_error(call("patch", url, viewer_token, {"title": "Mine"}), 403)
    patched = call("patch", url, editor_token, {"title": "Harbour", "tags": ["Boats"], "category": "travel"})
    assert patched.status_code == 200
    assert patched.json()["metadata"]["title"] == "Harbour" and patched.json()["metadata"]["tags"] == ["boats"]
    assert_error(call("patch", url, editor_token, {"width": 5}), 400)
    assert_error(call("patch", url, editor_token, {"title": 5}), 400)
    assert_error(call("patch", url, editor_token, {"tags": "boats"}), 400)


def test_upload_stats_and_duplicates(viewer_token, editor_token, library, settings):
    files = [SimpleUploadedFile("new.jpg", photo_bytes(40, size=(96, 72)), content_type="image/jpeg")]
    added = call("post", "/api/upload", editor_token, data={"files": files})
    assert added.status_code == 200 and added.json()["results"][0]["status"] == "added"
    again = [SimpleUploadedFile("again.jpg", photo_bytes(40, size=(96, 72)), content_type="image/jpeg")]
    known = call("post", "/api/upload", editor_token, data={"files": again}).json()["results"][0]
    assert known["status"] == "known" and known["image_id"] == added.json()["results"][0]["image_id"] is not None
    assert known["in_trash"] is False
    call("delete", f"/api/images/{known['image_id']}", editor_token)
    again = [SimpleUploadedFile("again.jpg", photo_bytes(40, size=(96, 72)), content_type="image/jpeg")]
    trashed = call("post", "/api/upload", editor_token, data={"files": again}).json()["results"][0]
    assert trashed["status"] == "known" and trashed["in_trash"] is True and "in the trash" in trashed["reason"]
    image_restore(images=list(Image.objects.filter(pk=known["image_id"])))
    assert_error(call("post", "/api/upload", viewer_token, data={"files": []}), 403)
    assert_error(call("post", "/api/upload", editor_token, data={}), 400)
    not_image = [SimpleUploadedFile("x.jpg", b"<html>", content_type="image/jpeg")]
    assert call("post", "/api/upload", editor_token, data={"files": not_image}).status_code == 415
    settings.IMGSIM_UPLOAD_MAX_BYTES = 10
    big = [SimpleUploadedFile("big.jpg", photo_bytes(41), content_type="image/jpeg")]
    assert call("post", "/api/upload", editor_token, data={"files": big}).status_code == 413
    stats = call("get", "/api/stats", viewer_token).json()
    assert stats["total_images"] == 7 and stats["avg_width"] == 96.0
    assert call("get", "/api/duplicates", editor_token).json() == {"groups": []}
    assert_error(call("get", "/api/duplicates", viewer_token), 403)


def test_openapi_describes_the_real_responses(viewer_token, library):
    assert Client().get("/api/openapi.json").status_code == 401  # nothing is public but /healthz
    doc = call("get", "/api/openapi.json", viewer_token).json()
    assert doc == json.loads(json.dumps(document("http://testserver/api/")))
    for path in doc["paths"]:
        assert Client().get("/api" + path.replace("{id}", str(library[0].pk))).status_code in (401, 405)
    search = call("post", "/api/search", viewer_token, {"query": "x", "top_k": 2, "threshold": -1}).json()
    schema = doc["paths"]["/search"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) <= set(search)
    for result in search["results"]:
        assert set(RESULT["required"]) <= set(result) and set(result) <= set(RESULT["properties"])
    stats_schema = doc["paths"]["/stats"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(stats_schema["required"]) <= set(call("get", "/api/stats", viewer_token).json())


def test_server_paths_are_shown_to_staff_only(viewer, editor, library):
    from imgsim_site.tokens import token_create

    _, viewer_key = token_create(user=viewer, name="v")
    _, staff_key = token_create(user=editor, name="e")  # the editor fixture is staff
    url = f"/api/images/{library[0].pk}"
    assert "source_path" not in call("get", url, viewer_key).json()
    assert call("get", url, staff_key).json()["source_path"].endswith(".jpg")


def test_the_media_urls_the_api_returns_open_with_the_same_token(viewer_token, library):
    results = call("post", "/api/search", viewer_token, {"query": "red car", "top_k": 2}).json()["results"]
    for url in (results[0]["path"], results[0]["thumbnail"]):
        path = url.removeprefix("http://testserver")
        fetched = call("get", path, viewer_token)
        assert fetched.status_code == 200 and fetched["Content-Type"].startswith("image/")
        assert_error(call("get", path, "imgsim_not-a-real-token"), 401)
        assert call("get", path).status_code == 302  # a browser without a session goes to the login page


def test_search_by_raw_embedding(viewer_token, library):
    from gallery.vectors import load_one

    vector = load_one(library[2].pk).tolist()
    results = call("post", "/api/search", viewer_token, {"embedding": vector, "top_k": 3}).json()["results"]
    assert results[0]["id"] == library[2].pk and results[0]["similarity"] > 0.999
    assert_error(call("post", "/api/search", viewer_token, {"embedding": [0.5, 0.5]}), 400)
    assert_error(call("post", "/api/search", viewer_token, {"embedding": ["x"]}), 400)
    both = call("post", "/api/search", viewer_token, {"embedding": vector, "image_id": library[0].pk})
    assert_error(both, 400)
