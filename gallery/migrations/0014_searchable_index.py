from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0013_trash_size_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="image",
            index=models.Index(
                fields=["trashed_at", "embedding_state", "missing_since", "embedding_model", "id"],
                name="image_searchable",
            ),
        ),
        # The planner's statistics (gallery.planner): without a row for a new index on trashed_at,
        # SQLite took it for every page of the grid and sorted the library (see 0013).
        migrations.RunSQL("ANALYZE", reverse_sql=migrations.RunSQL.noop),
    ]
