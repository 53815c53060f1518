"""Exit with a plain message when the address run-app is to serve on is taken (IMGSIM_BIND)."""

import socket
import sys

address = sys.argv[1]
host, _, port = address.rpartition(":")
host = host.strip("[]") or "0.0.0.0"
family = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        probe.bind((host, int(port)))
except (OSError, ValueError) as error:
    reason = getattr(error, "strerror", None) or str(error)
    sys.exit(
        f"imgsim cannot serve on {address}: {reason}. Another program (another imgsim?) is using it: stop it, "
        "or choose another address, e.g. IMGSIM_BIND=127.0.0.1:8001 bash scripts/run-app"
    )
