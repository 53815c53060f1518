"""A web worker's long-lived objects, kept out of the garbage collector's full passes.

A full collection walks every object the process holds, and the request that happens
to trigger it waits: with torch and a model loaded that is a few hundred thousand
objects (bench.pages prints the pause). gunicorn's workers freeze what they hold once
set up and again once the model is loaded (gc.freeze): frozen objects are still freed
when nothing refers to them, only no longer walked in search of cycles. Tests and
management commands never freeze: they load and drop models many times over.
"""

import gc

_serving = False


def serve() -> None:
    """Mark this process a web worker and freeze what it holds (gunicorn's post_worker_init)."""
    global _serving
    _serving = True
    settle()


def settle() -> None:
    """In a web worker, freeze what the process holds now (after loading something large and lasting)."""
    if _serving:
        gc.collect()
        gc.freeze()
