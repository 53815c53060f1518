"""Slow clients against the deployment's own nginx config (deploy/nginx.conf) in front of gunicorn.

Slow clients that send a request a little at a time hold one of gunicorn's few
threads each, for as long as they like. Behind nginx they wait in nginx, which
passes a request on only once it has all of it. The test runs the real processes:
gunicorn with gunicorn.conf.py, nginx with deploy/nginx.conf (addresses changed).
"""

import os
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from tests.processes import manage, project_env

pytestmark = pytest.mark.slow

THREADS = 4
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def get(url: str, timeout: float) -> urllib.request.http.client.HTTPResponse:
    return urllib.request.urlopen(url, timeout=timeout)


def wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll url until it answers; fail with the process's log if the process ends first."""
    while process.poll() is None:
        try:
            get(url, timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            continue
    raise AssertionError(log.read_text())


def slow_clients(port: int, count: int, stack: ExitStack) -> None:
    """Open count connections that each send the start of a request and then nothing more."""
    for _ in range(count):
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        sock.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")


def nginx_config(folder: Path, *, listen: int, upstream: int, static_root: Path) -> Path:
    """deploy/nginx.conf with this test's addresses, inside a main config that runs without root's paths."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in {
        "server web:8000;": f"server 127.0.0.1:{upstream};",
        "listen 80;": f"listen 127.0.0.1:{listen};",
        "alias /static/;": f"alias {static_root}/;",
    }.items():
        assert old in site, f"deploy/nginx.conf no longer has {old!r}: update this test"
        site = site.replace(old, new)
    (folder / "site.conf").write_text(site)
    temp = "\n".join(
        f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
    main = folder / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\n"
        + "events { worker_connections 256; }\n"
        + f"http {{\n{mime}\naccess_log off;\n{temp}\ninclude {folder / 'site.conf'};\n}}\n"
    )
    return main


@pytest.fixture
def stack(tmp_path, tiny_model):
    """gunicorn (1 process x THREADS threads) and nginx in front of it; yields (nginx url, gunicorn url)."""
    assert Path(NGINX).exists(), "nginx is missing: scripts/run-tests installs nginx-light"
    env = project_env(tmp_path, tiny_model)
    manage(env, "migrate", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")
    web_port, proxy_port = free_port(), free_port()
    env.update(WEB_CONCURRENCY="1", IMGSIM_THREADS=str(THREADS), IMGSIM_BIND=f"127.0.0.1:{web_port}")
    (tmp_path / "nginx").mkdir()
    config = nginx_config(
        tmp_path / "nginx", listen=proxy_port, upstream=web_port, static_root=tmp_path / "data" / "static"
    )
    with ExitStack() as processes:
        web_log, proxy_log = tmp_path / "gunicorn.log", tmp_path / "nginx" / "error.log"
        web = subprocess.Popen(
            [str(Path(os.sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "imgsim_site.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=processes.enter_context(open(web_log, "w")),
            stderr=subprocess.STDOUT,
        )
        processes.callback(lambda: (web.terminate(), web.wait(30)))
        proxy = subprocess.Popen([NGINX, "-c", str(config), "-p", str(tmp_path / "nginx")], stderr=subprocess.STDOUT)
        processes.callback(lambda: (proxy.terminate(), proxy.wait(30)))
        wait_until_serving(f"http://127.0.0.1:{web_port}/healthz", web, web_log)
        wait_until_serving(f"http://127.0.0.1:{proxy_port}/healthz", proxy, proxy_log)
        yield f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{web_port}"


def test_slow_clients_wait_in_nginx_while_gunicorn_serves_everyone_else(stack):
    proxy, web = stack
    proxy_port, web_port = int(proxy.rsplit(":", 1)[1]), int(web.rsplit(":", 1)[1])
    with ExitStack() as held:
        slow_clients(proxy_port, 5 * THREADS, held)
        for _ in range(3):
            page = get(proxy + "/accounts/login/", timeout=30)
            assert page.status == 200 and b"Log in" in page.read()
    # The same clients sent to gunicorn directly take all its threads: the check above can fail.
    with ExitStack() as held:
        slow_clients(web_port, 2 * THREADS, held)
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            get(web + "/accounts/login/", timeout=3)
    assert get(web + "/accounts/login/", timeout=30).status == 200  # and it serves again once they leave


def test_nginx_serves_the_collected_static_files_itself(stack):
    proxy, _ = stack
    page = get(proxy + "/accounts/login/", timeout=30).read().decode()
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page).group(1)
    served = get(proxy + stylesheet, timeout=30)
    assert served.status == 200 and served.headers["Content-Type"] == "text/css"
    # nginx's header (the app does not send it), once
    assert served.headers.get_all("Cache-Control") == ["public, max-age=2592000, immutable"]
