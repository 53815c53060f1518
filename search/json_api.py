"""The JSON API under /api/: the same services as the pages, for scripts and other services.

Auth: the logged-in session (CSRF enforced on writes) or a per-user token
(`Authorization: Bearer ...`). Errors are JSON {"error": ..., "status": ...}.
"""

import functools
import json

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt

from gallery.models import Image
from gallery.roles import can_edit
from gallery.serializers import image_dict
from gallery.services import image_trash, metadata_update
from gallery.uploads import receive_uploads
from search import python_api
from search.errors import USER_ERRORS, ModelUnavailable, SearchError
from search.tokens import token_user

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
EDITABLE = {"title": 200, "description": 10000, "category": 64, "location": 200}


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message, "status": status}, status=status)


def _authenticate(request):
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return token_user(header[7:].strip()), "token"
    if request.user.is_authenticated:
        return request.user, "session"
    return None, None


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
            except Http404:
                return error(404, "Not found: no photo with that id is in the library.")
            except ModelUnavailable as exc:
                return error(503, str(exc))
            except USER_ERRORS as exc:
                return error(exc.status, str(exc))
        return wrapper
    return decorate


def _absolute(request, result: dict) -> dict:
    return {**result, "path": request.build_absolute_uri(result["path"]),
            "thumbnail": request.build_absolute_uri(result["thumbnail"])}


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise SearchError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise SearchError("the body must be a JSON object")
    return body


@api_view({"POST"})
def search(request):
    if request.content_type == "application/json":
        data, upload = _json_body(request), None
    else:
        data, upload = request.POST.dict(), request.FILES.get("image")
        if "filters" in data:
            try:
                data["filters"] = json.loads(data["filters"])
            except ValueError:
                return error(400, "filters must be a JSON object")
    try:
        top_k = int(data["top_k"]) if data.get("top_k") not in (None, "") else None
        threshold = float(data["threshold"]) if data.get("threshold") not in (None, "") else None
        image_id = int(data["image_id"]) if data.get("image_id") not in (None, "") else None
    except (TypeError, ValueError):
        return error(400, "top_k and image_id must be whole numbers, threshold a number")
    results = python_api.find_similar(
        query_text=data.get("query") or None, query_image_id=image_id,
        query_image=upload.read() if upload is not None else None, exclude_text=data.get("exclude") or None,
        top_k=top_k, threshold=threshold, filter_metadata=data.get("filters") or None,
    )
    return JsonResponse({"results": [_absolute(request, r) for r in results]})


@api_view({"POST"}, editor=True)
def upload(request):
    result = receive_uploads(request.FILES.getlist("files"), user=request.user)
    if result.error:
        return error(result.status, result.error)
    return JsonResponse({"results": result.outcomes}, status=result.status)


@api_view({"GET", "PATCH", "DELETE"})
def image(request, pk: int):
    photo = get_object_or_404(Image.objects.live().select_related("metadata"), pk=pk)
    if request.method == "DELETE":
        if not can_edit(request.user):
            return error(403, "Moving photos to the trash needs the editor role.")
        image_trash(images=[photo])
        return JsonResponse({"id": photo.pk, "trashed": True,
                             "detail": "Moved to the trash; an editor can restore it on /trash/."})
    if request.method == "PATCH":
        if not can_edit(request.user):
            return error(403, "Editing metadata needs the editor role.")
        changes = _json_body(request)
        unknown = set(changes) - set(EDITABLE) - {"tags"}
        if unknown:
            return error(400, f"cannot change {', '.join(sorted(unknown))}; editable: "
                              f"{', '.join(sorted(EDITABLE) + ['tags'])}")
        for key, limit in EDITABLE.items():
            if key in changes and (not isinstance(changes[key], str) or len(changes[key]) > limit):
                return error(400, f"{key} must be text of at most {limit} characters")
        if "tags" in changes and (not isinstance(changes["tags"], list)
                                  or not all(isinstance(t, str) and t.strip() for t in changes["tags"])):
            return error(400, "tags must be a list of non-empty strings")
        metadata_update(image=photo, fields={k: v for k, v in changes.items() if k != "tags"},
                        tags=changes.get("tags"))
        photo = Image.objects.select_related("metadata").get(pk=pk)
    return JsonResponse(_absolute(request, image_dict(photo)))


@api_view({"GET"})
def stats(request):
    return JsonResponse(python_api.get_stats())


@api_view({"GET"}, editor=True)
def duplicates(request):
    from search.duplicates import duplicate_groups

    groups = duplicate_groups(tier=request.GET.get("tier") or None)
    return JsonResponse({"groups": [
        {"tier": g.tier, "keeper": g.keeper.pk, "keeper_filename": g.keeper.original_name,
         "keeper_reason": g.keeper_reason, "bytes_to_free": g.bytes_to_free,
         "members": [{"id": m.image.pk, "filename": m.image.original_name, "tier": m.tier, "similarity": m.similarity,
                      "hamming": m.hamming, "reason": m.reason} for m in g.members]}
        for g in groups
    ]})


@api_view({"GET"})
def openapi(request):
    """The API's description, for a logged-in user or a token (nothing is public but /healthz)."""
    from search.openapi import document

    return JsonResponse(document(request.build_absolute_uri("/api/")))
