"""Deployment proof: gunicorn workers + a Chroma server + the worker, under load, with kills.

    .venv/bin/python -m bench.deploy [--photos 500] [--seconds 120] [--users 16] [--skip-configs]

Everything runs as real processes on loopback, as docker-compose.yml would run them:
`chroma run`, gunicorn with gunicorn.conf.py, `manage.py worker`, `manage.py ingest`,
and locust (headless) as the load generator. It prints:

1. gallery req/s, p95 and per-process memory for a few workers x threads shapes
   (no ingest running): the numbers behind gunicorn.conf.py's defaults;
2. consistency while `ingest` adds --photos photos: how soon each committed photo is
   found through the API by every web worker, "database is locked" and worker restarts;
3. load while that ingest runs: 16 users browsing and searching for --seconds;
4. restart: uploads queued for the worker, kill -9 of the worker mid-batch and of the
   Chroma server mid-write, restarts, then `reconcile` must find nothing to fix.
"""

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import BENCH_DIR, ROOT, full_size_clip, table

PY = sys.executable


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {seconds} s")


def chroma_server(data: Path, port: int, env: dict) -> subprocess.Popen:
    """Start `chroma run` on data/chroma-server (its log beside it); return once it answers."""
    with open(data / "chroma.log", "a") as log:
        process = subprocess.Popen(
            [str(Path(PY).parent / "chroma"), "run", "--path", str(data / "chroma-server"), "--host", "127.0.0.1"]
            + ["--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat")
    return process


class Stack:
    """The processes of one deployment, sharing a data dir."""

    def __init__(self, data: Path, model: str):
        self.data, self.env = data, {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        self.env.update(
            {
                "IMGSIM_DATA_DIR": str(data),
                "IMGSIM_MODEL": model,
                "HF_HUB_OFFLINE": "1",
                "LOG_LEVEL": "WARNING",
                "IMGSIM_WORKER": "true",
                "ANONYMIZED_TELEMETRY": "False",
            }
        )
        self.chroma = self.web = self.worker = None
        self.chroma_port = free_port()
        self.env["CHROMA_URL"] = f"http://127.0.0.1:{self.chroma_port}"

    def manage(self, *args, check=True) -> str:
        result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True)
        if check and result.returncode:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout + result.stderr

    def start_chroma(self) -> None:
        self.chroma = chroma_server(self.data, self.chroma_port, self.env)

    def start_web(self, workers: int, threads: int) -> str:
        port = free_port()
        env = {
            **self.env,
            "WEB_CONCURRENCY": str(workers),
            "IMGSIM_THREADS": str(threads),
            "IMGSIM_BIND": f"127.0.0.1:{port}",
            "IMGSIM_ACCESS_LOG": str(self.data / "access.log"),
        }
        self.web_log = self.data / f"gunicorn-{workers}x{threads}.log"
        self.web = subprocess.Popen(
            [str(Path(PY).parent / "gunicorn"), "-c", "gunicorn.conf.py", "imgsim_site.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=open(self.web_log, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz")
        return url

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [PY, "manage.py", "worker", "--interval", "0.5"],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.data / "worker.log", "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @staticmethod
    def kill(process, sig=signal.SIGTERM) -> None:
        if process and process.poll() is None:
            os.killpg(process.pid, sig)
            process.wait(timeout=30)

    def web_memory_mb(self) -> list[float]:
        """RSS of each gunicorn worker process (children of the master)."""
        children = Path(f"/proc/{self.web.pid}/task/{self.web.pid}/children").read_text().split()
        sizes = []
        for pid in children:
            status = Path(f"/proc/{pid}/status").read_text()
            sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)
        return sizes

    def stop(self) -> None:
        for process in (self.web, self.worker, self.chroma):
            self.kill(process)


def locust(url: str, users: int, seconds: int, prefix: Path, pages: str = "all") -> dict[str, dict]:
    """Run locust headless; return {name: {requests, failures, rps, p50, p95}} from its CSV."""
    env = {**os.environ, "BENCH_PAGES": pages}
    subprocess.run(
        [
            str(Path(PY).parent / "locust"),
            "-f",
            "bench/locustfile.py",
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "-H",
            url,
            "--csv",
            str(prefix),
            "--only-summary",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    rows = {}
    failures = Path(f"{prefix}_failures.csv").read_text().strip().splitlines()[1:]
    if any(line.split(",")[1] == "login" for line in failures):
        raise SystemExit("locust could not log in:\n" + "\n".join(failures))
    exceptions = Path(f"{prefix}_exceptions.csv").read_text().strip().splitlines()[1:]
    if exceptions:
        raise SystemExit("the locust users raised:\n" + "\n".join(exceptions[:5]))
    with open(f"{prefix}_stats.csv") as handle:
        for row in csv.DictReader(handle):
            rows[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50": row["50%"],
                "p95": row["95%"],
            }
    return rows


def wrk(url: str, session: str, seconds: int, connections: int, *, keep_alive: bool = True) -> dict:
    """Load one URL with wrk (far lighter than locust, so the server gets the CPU); return its figures."""
    extra = [] if keep_alive else ["-H", "Connection: close"]
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            *extra,
            "-H",
            f"Cookie: sessionid={session}",
            url,
        ],
        capture_output=True,
        text=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency.get("50"),
        "p90": latency.get("90"),
        "p99": latency.get("99"),
        "errors": (int(bad.group(1)) if bad else 0),
        "socket": errors.group(1) if errors else "none",
    }


def session_for(stack: Stack, username: str) -> str:
    """A logged-in session key, made the way the login view makes one."""
    return stack.manage(
        "shell",
        "-c",
        (
            "from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            f"u = get_user_model().objects.get(username={username!r}); s = SessionStore()\n"
            "s[SESSION_KEY] = str(u.pk); s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
            "s[HASH_SESSION_KEY] = u.get_session_auth_hash(); s.create(); print(s.session_key)"
        ),
    ).split()[-1]


def search_by_photo(url: str, token: str, photo: Path) -> list[int]:
    """POST the photo itself to /api/search (multipart); return the ids found, best first."""
    boundary = "imgsim-bench-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n3\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url + "/api/search",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return [result["id"] for result in json.loads(response.read())["results"]]


def committed(stack: Stack) -> dict[int, str]:
    """{id: source path} of the photos whose embedding is committed."""
    import sqlite3

    with sqlite3.connect(stack.data / "imgsim.sqlite3", timeout=30) as db:
        return dict(db.execute("SELECT id, source_path FROM gallery_image WHERE embedding_state = 'done'"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--skip-configs", action="store_true", help="skip part 1")
    parser.add_argument(
        "--configs",
        default="1x4,1x8,1x16,2x4,2x8,2x16,3x4,4x2",
        help="workers x threads shapes for part 1 (default: %(default)s)",
    )
    parser.add_argument("--only-configs", action="store_true", help="run part 1 alone")
    parser.add_argument(
        "--close",
        action="store_true",
        help="part 1 without keep-alive: a new connection per request, as many browsers make",
    )
    parser.add_argument("--only-restart", action="store_true", help="run part 4 alone")
    args = parser.parse_args()
    data = BENCH_DIR / "deploy"
    if data.exists():
        import shutil

        shutil.rmtree(data)
    data.mkdir(parents=True)
    sys.path.insert(0, str(ROOT))
    from tests.photos import write_library

    stack = Stack(data, full_size_clip())
    try:
        run(stack, args, write_library)
    finally:
        stack.stop()


def run(stack: Stack, args, write_library) -> None:
    data = stack.data
    stack.manage("migrate", "-v0")
    stack.manage("collectstatic", "--noinput", "-v0")
    stack.manage("createuser", "bench", "--role", "editor", "--password", "bench-password")
    token = stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; from imgsim_site.tokens import "
        "token_create; print(token_create(user=get_user_model().objects.get(username='bench'), "
        "name='bench')[1])",
    ).split()[-1]
    stack.start_chroma()
    write_library(data / "seed", 120, size=(1600, 1200))
    stack.manage("ingest", str(data / "seed"), "--no-progress")

    # 1. shapes of gunicorn, gallery only, no ingest
    if not args.skip_configs and not args.only_restart:
        session = session_for(stack, "bench")
        rows = []
        for workers, threads in (map(int, shape.split("x")) for shape in args.configs.split(",")):
            url = stack.start_web(workers, threads)
            wrk(url + "/", session, 3, args.users)  # warm-up: imports, caches
            result = wrk(url + "/", session, 20, args.users, keep_alive=not args.close)
            memory = stack.web_memory_mb()
            rows.append(
                [
                    f"{workers} x {threads}",
                    f"{result['rps']:.0f}",
                    result["p50"],
                    result["p90"],
                    result["p99"],
                    result["errors"],
                    result["socket"],
                    " / ".join(f"{m:.0f}" for m in memory),
                ]
            )
            stack.kill(stack.web)
        print(
            f"\n1. gallery page (60 photos), {args.users} connections with wrk, 20 s each, no ingest "
            "(RSS per web process in MB)"
        )
        print(table(["workers x threads", "req/s", "p50", "p90", "p99", "non-2xx", "socket errors", "RSS MB"], rows))

    if args.only_configs:
        return
    url = stack.start_web(2, 8)
    if not args.only_restart:
        consistency_and_load(stack, args, url, token, write_library)
    restart(stack, url, write_library)


def consistency_and_load(stack: Stack, args, url: str, token: str, write_library) -> None:
    """Parts 2 and 3: ingest while 16 users browse and search; watch every photo become searchable."""
    data = stack.data
    locust(url, 4, 5, data / "warm2")
    write_library(data / "incoming", args.photos, start=1000, size=(1600, 1200))
    ingest = subprocess.Popen(
        [PY, "manage.py", "ingest", str(data / "incoming"), "--no-progress"],
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    known = set(committed(stack))
    lags, misses, checked = [], 0, 0
    done_event = threading.Event()
    load_result = {}

    def load() -> None:
        load_result.update(locust(url, args.users, args.seconds, data / "load"))
        done_event.set()

    threading.Thread(target=load, daemon=True).start()
    while ingest.poll() is None or set(committed(stack)) - known:
        rows = committed(stack)
        new = sorted(set(rows) - known)
        for image_id in new:
            # Until four requests in a row find it (with 2 workers they land on both), for up to 5 s.
            streak, seen_at = 0, time.monotonic()
            while streak < 4 and time.monotonic() - seen_at < 5:
                streak = streak + 1 if image_id in search_by_photo(url, token, Path(rows[image_id])) else 0
            checked += 1
            if streak < 4:
                misses += 1
            else:
                lags.append((time.monotonic() - seen_at) * 1000)
            known.add(image_id)
        time.sleep(0.05)
    ingest_output = ingest.stdout.read()
    done_event.wait()
    restarts = stack.web_log.read_text().count("Booting worker") - 2
    locked = sum(path.read_text(errors="replace").count("database is locked") for path in data.glob("*.log"))
    print(f"\n2. consistency: gunicorn 2 workers x 8 threads + Chroma server, `ingest` of {args.photos} photos")
    print(f"   ingest: {ingest_output.strip().splitlines()[-1] if ingest_output.strip() else '?'}")
    lags.sort()
    print(
        f"   photos checked through /api/search as soon as SQLite had their vector: {checked}; "
        f"not found by 4 requests in a row within 5 s: {misses}"
    )
    if lags:
        print(
            f"   time until found by 4 requests in a row (includes those requests): "
            f"p50 {lags[len(lags) // 2]:.0f} ms, max {lags[-1]:.0f} ms"
        )
    print(f"   web worker restarts: {restarts}; 'database is locked' in any log: {locked}")
    print(f"\n3. load: {args.users} users browsing and searching for {args.seconds} s during that ingest (ms)")
    print(
        table(
            ["page", "requests", "errors", "req/s", "p50", "p95"],
            [
                [name, r["requests"], r["failures"], f"{r['rps']:.1f}", r["p50"], r["p95"]]
                for name, r in load_result.items()
            ],
        )
    )
    print("   RSS per web process after it (model loaded): " + " / ".join(f"{m:.0f} MB" for m in stack.web_memory_mb()))


def restart(stack: Stack, url: str, write_library) -> None:
    """Part 4: the worker and the Chroma server killed mid-work, then restarted."""
    data = stack.data
    stack.start_worker()
    write_library(data / "uploads", 60, start=5000, size=(1600, 1200))
    stack.manage(
        "shell",
        "-c",
        (
            "from pathlib import Path; from django.core.files.uploadedfile import SimpleUploadedFile; "
            "from django.contrib.auth import get_user_model; from gallery.uploads import receive_uploads\n"
            f"uploads = Path({str(data / 'uploads')!r})\n"
            "files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(uploads.iterdir())]\n"
            "receive_uploads(files, user=get_user_model().objects.get(username='bench'))"
        ),
    )
    import sqlite3

    def waiting() -> int:
        with sqlite3.connect(data / "imgsim.sqlite3", timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM gallery_image WHERE embedding_state = 'pending'").fetchone()[0]

    deadline = time.monotonic() + 120
    while waiting() > 60 - 16 and time.monotonic() < deadline:  # the first batch of 16 is committed
        time.sleep(0.05)
    stack.kill(stack.worker, signal.SIGKILL)  # mid-way through the next batch
    stack.kill(stack.chroma, signal.SIGKILL)
    left = waiting()
    stack.start_chroma()
    stack.start_worker()
    started = time.monotonic()
    while time.monotonic() - started < 300:
        # /healthz shows the queue's details to logged-in users only: ask the database directly.
        left_over = stack.manage(
            "shell",
            "-c",
            (
                "from gallery.models import Image; from search.models import IndexOutbox; "
                "from django_tasks_db.models import DBTaskResult; "
                "print('LEFT', Image.objects.waiting_for_embedding().count() "
                "+ IndexOutbox.objects.count() + DBTaskResult.objects.ready().count())"
            ),
        )
        if re.search(r"^LEFT 0$", left_over, re.M):
            break
        time.sleep(1)
    recovery = time.monotonic() - started
    reconcile = stack.manage("reconcile", "--keep-orphan-files")
    print("\n4. restart: 60 uploads queued; worker and Chroma server killed with -9 after the worker's first batch")
    print(f"   photos still waiting at the kill: {left}; all done {recovery:.1f} s after the restart")
    print("   reconcile afterwards: " + "; ".join(line.strip() for line in reconcile.strip().splitlines()))


if __name__ == "__main__":
    main()
