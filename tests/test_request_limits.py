"""Writes that could never be accepted are refused before their body is read (uploads never spooled for nothing)."""

import io
import sys

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

pytestmark = pytest.mark.django_db


class UnreadableBody(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the request body was read")


def post(path: str, *, session: str = "", length: int = 5 * 2**20) -> tuple[str, dict]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": UnreadableBody(),
        "wsgi.errors": sys.stderr,
        "CONTENT_TYPE": "multipart/form-data; boundary=xyz",
        "CONTENT_LENGTH": str(length),
        # A CSRF cookie, as any client that loaded a page has: the CSRF check would then read the body.
        "HTTP_COOKIE": f"csrftoken={'a' * 32}" + (f"; sessionid={session}" if session else ""),
    }
    answer = {}
    # As Django's test client does: the test's database connection must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = WSGIHandler()(environ, lambda status, headers: answer.update(status=status, headers=dict(headers)))
        b"".join(chunks)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"]


def session_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def test_anonymous_uploads_are_sent_to_the_login_page_unread():
    status, headers = post("/upload/")
    assert status.startswith("302") and "/accounts/login/" in headers["Location"]
    assert post("/trash/delete/")[0].startswith("302")


def test_a_viewers_upload_is_refused_unread(viewer):
    assert post("/upload/", session=session_of(viewer))[0].startswith("403")
    assert post("/duplicates/resolve/", session=session_of(viewer))[0].startswith("403")


def test_an_anonymous_api_upload_gets_401_unread():
    assert post("/api/upload")[0].startswith("401")


def test_a_request_over_the_size_cap_gets_413_unread(editor, settings):
    status, _ = post("/upload/", session=session_of(editor), length=settings.IMGSIM_REQUEST_MAX_BYTES + 1)
    assert status.startswith("413")
    assert post("/api/upload", length=settings.IMGSIM_REQUEST_MAX_BYTES + 1)[0].startswith("413")
