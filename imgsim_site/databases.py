"""How imgsim connects to PostgreSQL (SQLite's settings are in settings.py)."""

import dj_database_url

from imgsim_site.env import env_int


def postgres_database(url: str, **options) -> dict:
    """Django's DATABASES entry for a postgres:// URL; options as dj_database_url.parse takes them."""
    database = dj_database_url.parse(url, **options)
    # A page of the grid is a LIMIT 61 query: on parallel workers it first waits for them to
    # start (tens of ms on two cores), then stops after a few thousand rows (bench.scale).
    parallel = env_int("IMGSIM_PG_PARALLEL_WORKERS", 0)
    database.setdefault("OPTIONS", {})["options"] = f"-c max_parallel_workers_per_gather={parallel}"
    return database
