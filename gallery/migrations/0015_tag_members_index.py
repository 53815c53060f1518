"""A tag's photos from the tag's side, from the index alone (gallery.planner.listed).

The many-to-many table's own indexes are (photo, tag) and (tag) alone: listing a
tag's photos read each row from the table, which on PostgreSQL cost more than the
list saved.
"""

from django.db import migrations

NAME = "metadata_tag_members"


def create(apps, schema_editor):
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {NAME} ON gallery_metadata_tags (tag_id, metadata_id)")
    # The planner's statistics for it (gallery.planner); SQLite has none for an index it has not analysed.
    sqlite = schema_editor.connection.vendor == "sqlite"
    schema_editor.execute(f"ANALYZE {NAME}" if sqlite else "ANALYZE gallery_metadata_tags")


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {NAME}")


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0014_searchable_index"),
    ]

    operations = [migrations.RunPython(create, drop)]
