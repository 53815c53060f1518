"""What the site keeps beside the apps: API tokens for the JSON API."""

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A per-user key for scripts (`Authorization: Bearer ...`); only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, help_text="first characters, to recognise the token")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "search_apitoken"  # created by the search app before tokens moved here

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
