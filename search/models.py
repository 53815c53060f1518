"""What the search layer keeps in SQLite beside gallery's rows."""

from django.conf import settings
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


class IndexedEntry(models.Model):
    """What sync last wrote to the index for a photo: a digest of the model and the metadata.

    `reconcile` compares it with a digest of what SQLite says now, instead of reading
    every entry back from the index (half of its time at a million photos); an entry
    with no record, or `reconcile --deep`, is read back and compared. Not a foreign key,
    as for the outbox: sync removes the record when it removes the entry.
    """

    image_id = models.BigIntegerField(primary_key=True)
    digest = models.BigIntegerField()

    def __str__(self) -> str:
        return f"indexed image {self.image_id}"


class IndexGeneration(models.Model):
    """A counter bumped after every index write, so readers in other processes know to catch up."""

    name = models.CharField(max_length=64, unique=True)
    generation = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}@{self.generation}"


class Tier(models.TextChoices):
    EXACT = "exact", "exact copy"
    NEAR = "near", "near-duplicate"
    SIMILAR = "similar", "similar shot"


class DuplicatePair(models.Model):
    """Two photos a scan found alike; groups are built from these by union-find."""

    image_a = models.ForeignKey("gallery.Image", on_delete=models.CASCADE, related_name="+")
    image_b = models.ForeignKey("gallery.Image", on_delete=models.CASCADE, related_name="+")
    tier = models.CharField(max_length=8, choices=Tier.choices)
    similarity = models.FloatField()
    hamming = models.PositiveSmallIntegerField(null=True, help_text="perceptual-hash distance in bits")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image_a", "image_b"], name="duplicate_pair_once"),
            models.CheckConstraint(condition=models.Q(image_a__lt=models.F("image_b")), name="duplicate_pair_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.image_a_id}~{self.image_b_id} ({self.tier})"


class NotDuplicate(models.Model):
    """A reviewer's "keep all": this pair never comes back as a duplicate."""

    image_a = models.ForeignKey("gallery.Image", on_delete=models.CASCADE, related_name="+")
    image_b = models.ForeignKey("gallery.Image", on_delete=models.CASCADE, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image_a", "image_b"], name="not_duplicate_once"),
            models.CheckConstraint(condition=models.Q(image_a__lt=models.F("image_b")), name="not_duplicate_ordered"),
        ]


class DuplicateScan(models.Model):
    """One run of the duplicate scan, with progress for the page to poll."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    incremental = models.BooleanField(default=False)
    progress = models.FloatField(default=0.0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Photos with an id up to this were compared with everything: the next
    # incremental scan compares only newer ones.
    last_image_id = models.BigIntegerField(default=0)
    pairs = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Set when a stopping worker interrupted the scan: candidates so far and where to go on.
    checkpoint = models.JSONField(null=True, blank=True)
    similarity_threshold = models.FloatField()
    hamming_threshold = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-started_at"]
