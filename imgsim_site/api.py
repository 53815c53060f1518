"""The JSON API's plumbing, shared by the apps' endpoints (gallery/json_api.py, search/json_api.py).

Auth: the logged-in session (CSRF enforced on writes) or a per-user token
(`Authorization: Bearer ...`). Request bodies are validated by pydantic schemas.
Errors are always JSON {"error": ..., "status": ...}, with the status of the error.
"""

import functools
import json

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from gallery.roles import can_edit
from imgsim_site.tokens import token_user
from search.errors import USER_ERRORS, ModelUnavailable

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class ApiError(Exception):
    """A request the API refuses; the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message, "status": status}, status=status)


def _authenticate(request):
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return token_user(header[7:].strip()), "token"
    if request.user.is_authenticated:
        return request.user, "session"
    return None, None


def bearer_or_login(view):
    """Media for the pages and for API clients: the session, or the JSON API's Bearer token (same roles).

    The URLs /api/search and /api/images return are fetched by scripts holding a token;
    without either, a browser is sent to the login page as elsewhere.
    """

    @login_not_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            user = token_user(header[7:].strip())
            if user is None:
                return error(401, "That token is not valid: it was revoked, or its user is deactivated.")
            request.user = user
        elif not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def api_view(methods: set[str], *, editor: bool = False):
    """Authenticate, check CSRF for session writes, check the role, turn errors into JSON."""

    def decorate(view):
        @csrf_exempt  # checked below for session requests; token requests carry no cookie
        @login_not_required  # answered with 401 JSON, not a redirect to the login page
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return error(405, f"Use {' or '.join(sorted(methods))}.")
            user, via = _authenticate(request)
            if user is None:
                return error(401, "Log in, or send 'Authorization: Bearer <token>' (create one on /profile/).")
            if via == "session" and request.method not in SAFE_METHODS:
                if CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}) is not None:
                    return error(403, "CSRF check failed: send the X-CSRFToken header with session requests.")
            request.user = user
            if editor and not can_edit(user):
                return error(403, "This needs the editor role.")
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error(exc.status, str(exc))
            except Http404:
                return error(404, "Not found: no photo with that id is in the library.")
            except ModelUnavailable as exc:
                return error(503, str(exc))
            except USER_ERRORS as exc:
                return error(exc.status, str(exc))

        return wrapper

    return decorate


def require_editor(request, action: str) -> None:
    if not can_edit(request.user):
        raise ApiError(403, f"{action} needs the editor role.")


def json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the body is not valid JSON (or is nested too deeply)") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def parse(schema: type[BaseModel], data: dict) -> BaseModel:
    """Validate data against a schema; a problem becomes a 400 naming the field."""
    try:
        return schema.model_validate(data)
    except ValidationError as problem:
        details = problem.errors(include_url=False)
        words = "; ".join(
            f"{'.'.join(map(str, d['loc'])) or 'body'}: {d['msg'].removeprefix('Value error, ')}" for d in details[:5]
        )
        raise ApiError(400, words) from None


def valid(form):
    """A bound Django form, checked; its errors become a 400 naming the fields (as parse does)."""
    if not form.is_valid():
        words = "; ".join(
            f"{'body' if name == '__all__' else name}: {' '.join(messages)}" for name, messages in form.errors.items()
        )
        raise ApiError(400, words)
    return form


def for_client(request, result: dict) -> dict:
    """An API result as this client sees it: file URLs made absolute; server paths for staff only."""
    shown = {
        **result,
        "path": request.build_absolute_uri(result["path"]),
        "thumbnail": request.build_absolute_uri(result["thumbnail"]),
    }
    if not request.user.is_staff:
        shown.pop("source_path", None)
    return shown


@api_view({"GET"})
def openapi(request):
    """The API's description, for a logged-in user or a token (nothing is public but /healthz)."""
    from imgsim_site.openapi import document

    return JsonResponse(document(request.build_absolute_uri("/api/")))
