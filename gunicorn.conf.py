"""gunicorn settings for imgsim, chosen by measurement (bench/deploy.py, 2 cores).

Embedded Chroma is not process-safe, so without CHROMA_URL one worker process
serves with threads; with a Chroma server, two workers. The gallery page with 16
keep-alive connections (wrk) gives ~200-270 req/s from one process, whatever its
threads (the GIL), and 470-620 from two, but only when the connections are spread
over both: left alone, one worker's accept loop can take all 16 and the other
idles (measured: 2 x 8 at 219 one run, 547 the next). Capping each worker at
`threads` connections spreads them (2 x 8: 472 and 509 req/s in two runs).
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
# Connections a worker holds at once (gthread): more wait in the listen queue for the
# least busy worker, instead of piling onto whichever accepted first.
worker_connections = int(os.environ.get("IMGSIM_WORKER_CONNECTIONS", threads))
