"""PostgreSQL's own indexes for the grid (SQLite's side is in gallery.planner).

- Sorted by date taken, newest first and unknown dates last: PostgreSQL walks an index
  backwards only as DESC NULLS FIRST, so without this one it sorted the whole library
  for every page (bench.scale at 100k: 33 ms for the query, 0.2 ms with it).
- A text filter compares UPPER(field) (iexact). Indexes on those expressions give the
  planner statistics about them: without, it guesses 0.5% of the rows, and for a
  category on 3.5% it read every match and sorted them instead of walking the grid's
  order. They also find the photos of a rare value.

SQLite has no NULLS LAST in an index and answers iexact with LIKE: nothing to add there.
"""

from django.db import migrations

TEXT_COLUMNS = {
    "gallery_metadata": ["category", "camera_make", "camera_model", "location"],
    "gallery_image": ["format"],
}
INDEXES = [
    ("metadata_taken_desc", 'gallery_metadata ("taken_at" DESC NULLS LAST, "image_id" DESC)'),
    *(
        (f"{table.removeprefix('gallery_')}_{column}_upper", f'{table} (UPPER("{column}"))')
        for table, columns in TEXT_COLUMNS.items()
        for column in columns
    ),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, on in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")
    schema_editor.execute("ANALYZE gallery_metadata")
    schema_editor.execute("ANALYZE gallery_image")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0011_grid_by_date_and_camera_indexes"),
    ]

    operations = [migrations.RunPython(create, drop)]
