"""gunicorn settings for imgsim, chosen by measurement (bench/deploy.py, 2 cores).

Embedded Chroma is not process-safe, so without CHROMA_URL one worker process
serves with threads; with a Chroma server, two workers. The gallery page with 16
keep-alive connections (wrk) gives ~200-270 req/s from one process, whatever its
threads (the GIL), and 470-620 from two, but only when the requests are spread
over both: with keep-alive, one worker's accept loop can take all 16 connections
for good and the other idles (2 x 8 measured 219 in one run, 547 the next).
Closing each connection after its response, and letting a worker hold only as
many connections as it has threads, hands every request to a free worker: 2 x 8
gave 472 and 509 req/s in two runs (440 and 494 with clients that close). Behind
a reverse proxy, which is how a public server runs anyway, keep-alive to
gunicorn buys nothing.
A worker is ~80-120 MB until its first text or photo search loads the model
(~1 GB with ViT-B/32); each worker loads it once, on first use. torch is never
imported in the master (no preload_app): torch and fork do not mix.
"""

import os

bind = os.environ.get("IMGSIM_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2" if os.environ.get("CHROMA_URL") else "1"))
threads = int(os.environ.get("IMGSIM_THREADS", "8"))
worker_class = "gthread"
preload_app = False
timeout = 120
graceful_timeout = 30
max_requests = 0
accesslog = os.environ.get("IMGSIM_ACCESS_LOG", "-")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No keep-alive, and a worker holds only the connections it can serve: waiting ones
# stay in the listen queue for whichever worker is free (see above).
keepalive = 0
worker_connections = int(os.environ.get("IMGSIM_WORKER_CONNECTIONS", threads))


def on_starting(server):
    """Run Django's checks before serving: missing static files or a wrong backend stop the start, with the fix."""
    import django
    from django.core.management import call_command

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imgsim_site.settings")
    django.setup()
    call_command("check")
    from imgsim_site.checks import static_files

    for problem in static_files():
        raise SystemExit(f"{problem.msg} {problem.hint}")


def post_worker_init(worker):
    """Freeze what the worker holds (imgsim_site.heap); the first worker computes embeddings left
    waiting (e.g. ingested while the model was missing)."""
    from django.urls import get_resolver

    from imgsim_site import heap

    get_resolver().url_patterns  # imports every view now rather than in a first request
    heap.serve()
    if worker.age == 1:
        from search.tasks import embed_waiting_at_start

        embed_waiting_at_start()
