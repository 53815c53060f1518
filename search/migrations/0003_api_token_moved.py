"""API tokens now belong to imgsim_site (same table): forget the model here, keep the table."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0002_api_token"),
        ("imgsim_site", "0001_api_token"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiToken")], database_operations=[]
        ),
    ]
