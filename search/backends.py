"""Pluggable parts, as Django's cache and email backends: a settings dict with a dotted BACKEND and OPTIONS.

IMGSIM_EMBEDDER names an Embedder subclass (search.embeddings) and IMGSIM_INDEX a
VectorIndex subclass (search.index). A wrong path fails the `check` framework at
start-up (search.checks) and any process that builds the backend with a message
naming the setting.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


def backend_class(setting: str, base: type) -> type:
    """Return the class settings.<setting>["BACKEND"] names, checked to be a subclass of base."""
    conf = getattr(settings, setting, None)
    if not isinstance(conf, dict) or not isinstance(conf.get("BACKEND"), str):
        raise ImproperlyConfigured(f"{setting} must be a dict with a BACKEND dotted path and optional OPTIONS")
    try:
        cls = import_string(conf["BACKEND"])
    except ImportError as error:
        raise ImproperlyConfigured(f"{setting}['BACKEND'] = {conf['BACKEND']!r} cannot be imported: {error}") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ImproperlyConfigured(
            f"{setting}['BACKEND'] = {conf['BACKEND']!r} is not a {base.__module__}.{base.__name__} subclass"
        )
    return cls


def build_backend(setting: str, base: type):
    """Build the backend a setting describes."""
    conf = getattr(settings, setting)
    return backend_class(setting, base)(**conf.get("OPTIONS", {}))
