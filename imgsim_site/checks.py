"""Start-up checks of the site: what would make every page fail must stop the start instead."""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from django.core import checks
from django.utils.module_loading import import_string


def static_files(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Without DEBUG, pages name their CSS and scripts through collectstatic's manifest: it must exist."""
    storage = import_string(settings.STORAGES["staticfiles"]["BACKEND"])
    if settings.DEBUG or not issubclass(storage, ManifestStaticFilesStorage):
        return []
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if manifest.exists():
        return []
    return [
        checks.Error(
            f"Static files are missing from {settings.STATIC_ROOT}: every page would answer 500.",
            hint="Run `python manage.py collectstatic --noinput` (scripts/run-app and the Docker image do).",
            id="imgsim.E003",
        )
    ]
