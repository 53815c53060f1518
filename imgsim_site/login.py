"""Login protection beyond django-axes' per-user lock: the real client address, and a limit per address.

django-axes locks a username from one address after IMGSIM_LOGIN_FAILURES wrong
passwords. Two more rules: behind a reverse proxy (IMGSIM_BEHIND_PROXY) the client
address is the one the proxy appended to X-Forwarded-For, not the proxy's own (all
clients would share one lock); and one address may fail at most
IMGSIM_LOGIN_FAILURES_PER_ADDRESS times across all usernames within the cool-off, so
trying one password on many accounts (spraying) is stopped too.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.db.models import Sum
from django.shortcuts import render
from django.utils import timezone


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or behind our proxy the last X-Forwarded-For entry (the one it added)."""
    if settings.IMGSIM_BEHIND_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "")


def address_failures(ip: str) -> int:
    """Failed logins from this address, all usernames together, within the cool-off."""
    from axes.models import AccessAttempt

    since = timezone.now() - timedelta(minutes=settings.IMGSIM_LOGIN_COOLOFF_MINUTES)
    attempts = AccessAttempt.objects.filter(ip_address=ip, attempt_time__gte=since)
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if address_failures(client_ip(request)) >= settings.IMGSIM_LOGIN_FAILURES_PER_ADDRESS:
            return render(request, "registration/locked_out.html", {"per_address": True}, status=429)
        return super().post(request, *args, **kwargs)
