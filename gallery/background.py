"""Work on a thread of the current process, for jobs short enough not to need the worker.

imgsim runs work outside a request in three ways (docs/architecture.md, "Background
work"): after commit in the same process (index sync, search.signals), in the
worker process when IMGSIM_WORKER is set (search.tasks), and, for a refresh of the
statistics or a duplicate scan without a worker, here. Threads started here are
named and counted, so /healthz can say what a web process is doing.
"""

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections

log = logging.getLogger(__name__)
_running: dict[str, int] = {}
_lock = threading.Lock()


def start(name: str, work: Callable[[], None]) -> None:
    """Run work on a daemon thread named name; its exceptions are logged, its database connection closed."""

    def run() -> None:
        try:
            work()
        except Exception:
            log.exception("background work %s failed", name)
        finally:
            with _lock:
                _running[name] -= 1
                if not _running[name]:
                    del _running[name]
            close_old_connections()

    with _lock:
        _running[name] = _running.get(name, 0) + 1
    threading.Thread(target=run, name=name, daemon=True).start()


def running() -> dict[str, int]:
    """How many threads of each kind are running in this process."""
    with _lock:
        return dict(_running)
