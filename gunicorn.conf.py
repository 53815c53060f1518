"""gunicorn settings for imgsim, chosen by measurement (bench/deploy.py, 2 cores).

Embedded Chroma is not process-safe, so without CHROMA_URL one worker process
serves with threads; with a Chroma server, two workers. Gallery page with 16
keep-alive connections (wrk): 1 x 4 threads 258 req/s, 2 x 4 247, 2 x 8 563,
3 x 4 529, 4 x 2 269; hence 8 threads. A worker is ~80-120 MB until its first text
or photo search loads the model (each worker loads it once, on first use).
torch is never imported in the master (no preload_app): torch and fork do not mix.
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
