"""What the search layer keeps in SQLite beside gallery's rows."""

from django.db import models


class IndexOutbox(models.Model):
    """An image whose vector-index entry must be brought in line with SQLite.

    Written in the same transaction as the change, so the work survives a crash
    between commit and the index write; `reconcile` finishes whatever is left.
    Not a foreign key: the row must outlive a deleted image, whose vector must go.
    """

    image_id = models.BigIntegerField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"sync image {self.image_id}"


class IndexGeneration(models.Model):
    """A counter bumped after every index write, so readers in other processes know to catch up."""

    name = models.CharField(max_length=64, unique=True)
    generation = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}@{self.generation}"
