"""gunicorn settings for imgsim.

Embedded Chroma is not process-safe, so without CHROMA_URL one worker process
serves with threads; with a Chroma server, set WEB_CONCURRENCY for more workers.
torch is never imported in the master (no preload_app): torch and fork do not mix,
and each worker loads the model once, on first use.
"""

import os

bind = os.environ.get("IMGSIM_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2" if os.environ.get("CHROMA_URL") else "1"))
threads = int(os.environ.get("IMGSIM_THREADS", "4"))
worker_class = "gthread"
preload_app = False
timeout = 120
graceful_timeout = 30
max_requests = 0
accesslog = os.environ.get("IMGSIM_ACCESS_LOG", "-")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
