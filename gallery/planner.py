"""The database's statistics about the library, which its query planner chooses indexes by.

Without them SQLite takes `trashed_at IS NULL` for a selective condition (it holds
for every live photo) and sorts the whole library for a page or a photo's
neighbours sorted by date taken. A full ANALYZE reads every index once; it runs
after the library changes in bulk (ingest, reconcile) and in the migration that
added the grid's index.

Without histograms (Python's SQLite has no STAT4) it also cannot tell a tag on a
quarter of the library from a tag on ten photos: it lists every photo with the tag
and sorts them for a page of sixty. Filters therefore ask `holds_for_many` first:
a condition that holds for many photos is checked photo by photo while the
database walks the grid's order (a page needs about 60 / share of them), one that
holds for few is looked up by its index and its photos sorted.

Checking a photo walked past against such a condition probes the condition's index
(a tag's photos) for it; a condition on up to LISTED_UP_TO photos is instead listed
first and handed to the database as constant ids (`listed`, `AnyOf`), which
PostgreSQL hashes and SQLite puts in a temporary index in memory, both several
times quicker to check than the index on disk (figures in docs/architecture.md).
"""

from django.db import connection
from django.db.models import Aggregate, BooleanField, DateTimeField, Expression, F, TextField, Transform

# From this many photos on, walking the grid's order beats sorting the matches: in a million, a
# condition on 2,000 walks ~30,000 rows for a page, about what sorting 2,000 matches costs.
MANY = 2_000


# Listing more ids than this costs more than probing the index for the photos a page walks past.
LISTED_UP_TO = 10_000


def listed(rows) -> str | None:
    """A condition's photo ids (rows: a queryset of one `image_id` column) comma-separated, when
    they are at most LISTED_UP_TO; else None."""
    if _has_at_least(rows, LISTED_UP_TO + 1):
        return None
    return rows.order_by().aggregate(ids=_CommaJoined("image_id"))["ids"] or ""


class _CommaJoined(Aggregate):
    """A column's values as one text, comma-separated, in no particular order."""

    function = "STRING_AGG"
    template = "%(function)s(CAST(%(expressions)s AS TEXT), ',')"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="GROUP_CONCAT", **extra)


class AnyOf(Expression):
    """`column` is one of a `listed` condition's ids, written into the query as a constant.

    PostgreSQL hashes a constant array once and checks each row in the hash, and plans
    with its length (an array parameter or subquery it searches element by element for
    every row); SQLite builds a temporary index of the list, and the `+` keeps it from
    looking each id up instead of walking the grid's order."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, column: str, ids: str):
        super().__init__()
        self.column = F(column)
        self.ids = ids

    def get_source_expressions(self):
        return [self.column]

    def set_source_expressions(self, expressions):
        (self.column,) = expressions

    def as_sql(self, compiler, connection):
        sql, params = compiler.compile(self.column)
        return f"{sql} = ANY(%s::bigint[])", [*params, "{" + self.ids + "}"]

    def as_sqlite(self, compiler, connection):
        sql, params = compiler.compile(self.column)
        return f"+{sql} IN (SELECT value FROM json_each(%s))", [*params, "[" + self.ids + "]"]


def holds_for_many(rows) -> bool:
    """Whether a queryset (a condition's rows, e.g. a tag's photos) has MANY rows or more.

    Asks whether its MANY-th row exists: that selects no column, so the condition's index answers
    alone, where counting the rows of a slice read each row's photo from the table (ten times
    slower for a tag's photos; figures in docs/architecture.md)."""
    return _has_at_least(rows, MANY)


def _has_at_least(rows, count: int) -> bool:
    return rows.order_by()[count - 1 : count].exists()


class Unindexed(Transform):
    """`taken_at__unindexed__gte=...`: the same comparison, which SQLite may not answer from an
    index (its documented unary-plus hint), so a common condition is checked along the grid's
    order instead of its photos being listed and sorted. Other databases compare as usual."""

    lookup_name = "unindexed"

    def as_sql(self, compiler, connection):
        sql, params = compiler.compile(self.lhs)
        return (f"+{sql}" if connection.vendor == "sqlite" else sql), params


DateTimeField.register_lookup(Unindexed)


def refresh_statistics() -> None:
    """Recompute the planner's statistics (SQLite: ANALYZE; PostgreSQL: ANALYZE, as autovacuum would)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
