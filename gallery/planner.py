"""The database's statistics about the library, which its query planner chooses indexes by.

Without them SQLite takes `trashed_at IS NULL` for a selective condition (it holds
for every live photo) and sorts the whole library for a page or a photo's
neighbours sorted by date taken. A full ANALYZE reads every index once; it runs
after the library changes in bulk (ingest, reconcile) and in the migration that
added the grid's index.
"""

from django.db import connection


def refresh_statistics() -> None:
    """Recompute the planner's statistics (SQLite: ANALYZE; PostgreSQL: ANALYZE, as autovacuum would)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
