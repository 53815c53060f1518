"""A polite stop for the worker's long tasks.

`docker stop` sends SIGTERM and kills the worker 10 s later. The worker's signal
handler sets `requested`; long tasks look at it between steps (a block of the
duplicate scan, a batch of embeddings) and return early, leaving what is left
where the next worker start finds it: a scan keeps a checkpoint and resumes from
it, photos still waiting for embeddings are found again in SQLite.
"""

import threading

requested = threading.Event()


def stop_requested() -> bool:
    return requested.is_set()
