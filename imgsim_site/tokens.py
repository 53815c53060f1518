"""API tokens: created once (the key is shown once), stored hashed, revocable."""

import hashlib
import secrets

from django.utils import timezone

from imgsim_site.models import ApiToken


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """Create a token; return it and the key, which is never stored and cannot be shown again."""
    key = "imgsim_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:100] or "token", prefix=key[7:15], key_hash=_digest(key)
    )
    return token, key


def token_user(key: str):
    """Return the active user a key belongs to, or None."""
    token = ApiToken.objects.select_related("user").filter(key_hash=_digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def token_revoke(*, user, token_id: int) -> bool:
    return ApiToken.objects.filter(user=user, pk=token_id).delete()[0] > 0
