"""Pages of the gallery app, one module per feature."""

from django.utils.http import url_has_allowed_host_and_scheme


def posted_next(request, default: str) -> str:
    """Where a form asked to go back to (its `next` field), if that is a page of this site; else default."""
    wanted = request.POST.get("next", "")
    return wanted if url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}) else default
