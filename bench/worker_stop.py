"""How promptly the worker stops mid duplicate scan, and what resuming costs.

    .venv/bin/python -m bench.worker_stop [--photos 100000] [--at 0.3]

Queues a full scan of synthetic photos, starts `manage.py worker`, sends SIGTERM
once the scan is --at done (as `docker stop` would) and times the exit; then a
second worker (--batch) finishes the scan from its checkpoint. Prints the stop
latency and the scan's time in the two runs against one uninterrupted scan.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

from bench.common import ROOT, setup_django, synthetic_library, table

MODEL = "bench/random-512"


def worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "worker", *args], cwd=ROOT, env=dict(os.environ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--at", type=float, default=0.3, help="fraction of the scan done when SIGTERM is sent")
    args = parser.parse_args()
    setup_django("worker_stop", IMGSIM_MODEL=MODEL, IMGSIM_WORKER="true")
    from search.duplicates import start_scan
    from search.models import DuplicateScan

    synthetic_library(args.photos, model=MODEL)
    started = time.perf_counter()
    start_scan()  # in this process: the reference time
    uninterrupted = time.perf_counter() - started

    scan = start_scan(background=True)  # queued for the worker
    process = worker("--interval", "0.2")
    while DuplicateScan.objects.get(pk=scan.pk).progress < args.at * 0.95:
        if process.poll() is not None:
            sys.exit("the worker ended before the scan got going")
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    signalled = time.perf_counter()
    code = process.wait()
    stop_seconds = time.perf_counter() - signalled
    scan.refresh_from_db()
    first_part = scan.checkpoint["seconds"] if scan.checkpoint else None

    resumed = worker("--batch")
    resumed.wait()
    scan.refresh_from_db()
    print(
        table(
            ["photos", "SIGTERM to exit s", "exit code", "scan s before stop", "scan s in all", "uninterrupted s"],
            [[args.photos, stop_seconds, code, first_part, scan.seconds, uninterrupted]],
        )
    )
    print(f"scan after the restart: {scan.status}, {scan.pairs} pairs")


if __name__ == "__main__":
    main()
