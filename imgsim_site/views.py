from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


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
    return JsonResponse(report, status=200 if database_ok else 503)
