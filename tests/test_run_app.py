"""scripts/run-app's own checks, before it claims to be running."""

import socket
import subprocess
import sys

from tests.conftest import ROOT


def test_a_taken_port_is_reported_before_anything_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "check-bind.py"), address], capture_output=True, text=True
        )
    assert result.returncode == 1
    assert f"imgsim cannot serve on {address}" in result.stderr and "IMGSIM_BIND=" in result.stderr
    free = subprocess.run([sys.executable, str(ROOT / "scripts" / "check-bind.py"), address], capture_output=True)
    assert free.returncode == 0  # closed again: free
