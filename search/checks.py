"""System checks: the configured backends resolve before anything uses them (`manage.py check`, runserver, migrate)."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def backends(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from search.backends import backend_class
    from search.embeddings import Embedder
    from search.index import VectorIndex

    problems = []
    for setting, base, code in (
        ("IMGSIM_EMBEDDER", Embedder, "imgsim.E001"),
        ("IMGSIM_INDEX", VectorIndex, "imgsim.E002"),
    ):
        try:
            backend_class(setting, base)
        except ImproperlyConfigured as error:
            problems.append(checks.Error(str(error), hint="Fix the setting (see README, Configuration).", id=code))
    return problems
