"""Users for bench/deploy.py: log in once, then browse the gallery and search.

    locust -f bench/locustfile.py --headless -u 16 -r 16 -t 60s -H http://127.0.0.1:8000
Set BENCH_PAGES=gallery to load the gallery only (the req/s target).
"""

import os
import random
import re

from locust import HttpUser, constant, task

USER, PASSWORD = os.environ.get("BENCH_USER", "bench"), os.environ.get("BENCH_PASSWORD", "bench-password")
QUERIES = ["a photo", "red shapes", "a sunset", "cat on a sofa", "mountains", "city at night"]


class Browser(HttpUser):
    wait_time = constant(0)  # as fast as the server answers: a throughput test

    def on_start(self):
        page = self.client.get("/accounts/login/", name="login")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        self.client.post(
            "/accounts/login/",
            {"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": self.host + "/accounts/login/"},
            name="login",
        )

    @task(3)
    def gallery(self):
        self.client.get(f"/?page={random.randint(1, 3)}", name="gallery")

    @task(1)
    def search(self):
        if os.environ.get("BENCH_PAGES") != "gallery":
            self.client.get("/search/?q=" + random.choice(QUERIES).replace(" ", "+"), name="search")
        else:
            self.gallery()
