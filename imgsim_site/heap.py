"""A web worker's long-lived objects, kept out of the garbage collector's full passes.

A full collection walks every object the process holds, and the request that happens
to trigger it waits: with torch and a model loaded that is a few hundred thousand
objects (bench.pages prints the pause). gunicorn's workers freeze what they hold
(gc.freeze) once set up, once search has imported torch and built its columns, and
once the model is loaded: frozen objects are still freed when nothing refers to them,
only no longer walked in search of cycles. Each moment freezes once per process, so
the few objects of requests in flight then are frozen once, not at every rebuild.
Tests and management commands never freeze: they load and drop models many times.

A bulk job over the whole library (reconcile, reindex) pauses the collector instead:
its own lists of a million ids are walked by each full pass, and it triggers a pass
every few thousand rows it builds (bench.scale prints the job's time).
"""

import contextlib
import gc
import threading

# The moments this process froze at: none unless it is a web worker, whose first is "start".
_settled: set[str] = set()


def serve() -> None:
    """Mark this process a web worker and freeze what it holds (gunicorn's post_worker_init)."""
    _freeze("start")


def web_worker() -> bool:
    """Whether this process serves requests (gunicorn marked it with serve())."""
    return bool(_settled)


def settle(moment: str) -> None:
    """In a web worker, the first time this moment comes, freeze what the process holds now."""
    if _settled and moment not in _settled:
        _freeze(moment)


_pauses = 0
_pauses_lock = threading.Lock()
_paused_it = False


@contextlib.contextmanager
def collector_paused():
    """Run a bulk job without the collector's passes: its rows are freed as they go out of use
    (reference counting), only cycles wait for the end. Nested and concurrent pauses end with the last."""
    global _pauses, _paused_it
    with _pauses_lock:
        _pauses += 1
        if _pauses == 1:
            _paused_it = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _pauses_lock:
            _pauses -= 1
            if _pauses == 0 and _paused_it:
                gc.enable()


def _freeze(moment: str) -> None:
    _settled.add(moment)
    gc.collect()
    gc.freeze()
