"""The progress bar of every long-running management command: tqdm on stderr, or none."""

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(command, *, enabled: bool, unit: str, total: int | None = None) -> Iterator[Callable | None]:
    """Yield a function that advances the bar by n (default 1), or None with --no-progress.

    Callers test the yielded function, never the bar: bool() of a tqdm without a
    total raises, which once crashed `reindex`.
    """
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, dynamic_ncols=True, file=command.stderr._out)
    try:
        yield bar.update
    finally:
        bar.close()
