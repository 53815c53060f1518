"""Typed readers for settings that come from the environment.

Each helper returns the default when the variable is unset and raises
ImproperlyConfigured naming the variable when it is set to something unusable, so a
typo fails at start-up instead of changing behaviour silently.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: set[str]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(sorted(choices))}, not {value!r}")
    return value


def env_url(name: str, *, schemes: set[str]) -> str | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in sorted(schemes))}, not {raw!r}"
        )
    return raw


def data_dir(name: str, default: Path) -> Path:
    """Return the data directory, creating it, or fail with a message that names the variable."""
    path = Path(os.environ.get(name) or default).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImproperlyConfigured(f"{name}={path} cannot be created: {error.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ImproperlyConfigured(f"{name}={path} is not writable by this user")
    return path


def secret_key(data_path: Path) -> str:
    """Return SECRET_KEY from the environment, or one generated once and kept in the data dir."""
    from_env = os.environ.get("SECRET_KEY")
    if from_env:
        if len(from_env) < 50 or len(set(from_env)) < 5:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters long")
        return from_env
    key_file = data_path / "secret_key"
    if not key_file.exists():
        from django.utils.crypto import get_random_string

        # Written to a temp file and renamed so two processes starting at once never
        # read a half-written key.
        tmp = key_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(get_random_string(64))
        tmp.chmod(0o600)
        os.replace(tmp, key_file) if not key_file.exists() else tmp.unlink()
    return key_file.read_text().strip()
