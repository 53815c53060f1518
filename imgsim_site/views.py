"""Site-wide pages: the health check, and the user's own page with API tokens."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from imgsim_site.models import ApiToken
from imgsim_site.tokens import token_create, token_revoke


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, connection.vendor
    except Exception as error:  # any driver error means "not reachable"
        return False, f"{type(error).__name__}: {error}"


def _safely(check) -> dict:
    try:
        return check()
    except Exception as error:  # e.g. a database not migrated yet: report it, do not fail the check
        return {"ok": False, "detail": f"{type(error).__name__}: {error}"}


@require_GET
@never_cache
@login_not_required
def healthz(request):
    """Report what a load balancer or an operator needs: 200 when the app can serve."""
    from search.health import index_health, model_health, queue_health

    database_ok, database_detail = _database_ok()
    report = {
        "database": {"ok": database_ok, "detail": database_detail},
        "index": index_health(),
        "model": model_health(),
        "queue": _safely(queue_health) if database_ok else {"ok": False},
    }
    # Only the database decides liveness: without the index or model the app still
    # serves the gallery, and search says what is wrong.
    report["ok"] = database_ok
    if not request.user.is_authenticated:
        # Anyone may ask (load balancers do); only a logged-in user sees paths, counts and errors.
        report = {"ok": database_ok, **{part: {"ok": report[part].get("ok", True)} for part in PARTS}}
    return JsonResponse(report, status=200 if database_ok else 503)


PARTS = ("database", "index", "model", "queue")


NEW_KEY_SESSION = "imgsim-new-token"


@require_http_methods(["GET", "POST"])
def profile(request):
    """The user's API tokens: create (the key is shown once, after a redirect) and revoke."""
    if request.method == "POST":
        form = TokenForm(request.POST)
        if not form.is_valid():
            return render(request, "profile.html", {"tokens": _tokens(request.user), "form": form}, status=400)
        if form.cleaned_data["action"] == "create":
            _, request.session[NEW_KEY_SESSION] = token_create(user=request.user, name=form.cleaned_data["name"])
        else:
            token_revoke(user=request.user, token_id=form.cleaned_data["token"] or 0)
            messages.success(request, "The token was revoked.")
        return redirect("profile")
    context = {
        "tokens": _tokens(request.user),
        "new_key": request.session.pop(NEW_KEY_SESSION, ""),
        "form": TokenForm(),
    }
    return render(request, "profile.html", context)


class TokenForm(forms.Form):
    action = forms.ChoiceField(choices=[("create", "create"), ("revoke", "revoke")])
    name = forms.CharField(required=False, max_length=100)
    token = forms.IntegerField(required=False, min_value=1)


def _tokens(user):
    return ApiToken.objects.filter(user=user).order_by("-created_at")
