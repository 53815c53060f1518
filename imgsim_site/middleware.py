"""Refuse a write before its body is read when it could never be accepted.

Django's CSRF middleware reads a POST body (looking for the token) before any view
runs, so an anonymous client, or a viewer posting to the upload page, would have a
whole upload spooled to disk before the redirect or the 403. This middleware runs
before it: anonymous writes go to the login page, writes to views only editors may
use (gallery.roles.editor_required) get 403, and bodies larger than
IMGSIM_REQUEST_MAX_MB get 413, all without reading a byte of the body. Views that
authenticate for themselves (the JSON API: tokens, 401 JSON) are left to do so.
"""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.shortcuts import render

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


class BodyGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method in SAFE_METHODS:
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.IMGSIM_REQUEST_MAX_BYTES:
            return _too_large(request)
        if not getattr(view_func, "login_required", True):
            return None  # answers for itself, e.g. the JSON API's 401
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        permission = getattr(view_func, "required_permission", None)
        if permission and not request.user.has_perm(permission):
            return _refused(request, 403, "Only editors can do this.")
        return None


def _too_large(request):
    limit = settings.IMGSIM_REQUEST_MAX_BYTES // 2**20
    return _refused(request, 413, f"The request is larger than {limit} MB; send fewer or smaller files at once.")


def _refused(request, status: int, message: str):
    # Answered here, not raised: exception handling would let later middleware read the body.
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message, "status": status}, status=status)
    return render(request, "refused.html", {"message": message, "status": status}, status=status)


# Pages run only the app's own scripts (static/js, htmx): an injected <script> or inline
# handler does nothing. Styles may be inline (htmx adds its indicator style).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    """Send the policy with every HTML page (media responses set a stricter one of their own)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
