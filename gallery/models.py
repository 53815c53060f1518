"""What a photo is: the stored file, its facts, and the metadata people edit."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Tag(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(name=Lower("name")), name="tag_name_lowercase"),
            models.CheckConstraint(condition=~models.Q(name=""), name="tag_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class ImageQuerySet(models.QuerySet):
    def live(self):
        return self.filter(trashed_at__isnull=True)

    def trashed(self):
        return self.filter(trashed_at__isnull=False)

    def waiting_for_embedding(self):
        """Live photos whose vector is still to be computed (failed ones wait for reconcile --retry-failed)."""
        return self.live().filter(embedding_state=Image.Embedding.PENDING)


class Image(models.Model):
    class Embedding(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "embedded"
        FAILED = "failed", "failed"

    sha256 = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the original file's bytes")
    # Relative to MEDIA_ROOT for stored originals; absolute for --in-place references.
    file = models.CharField(max_length=1024)
    in_place = models.BooleanField(default=False)
    original_name = models.CharField(max_length=255)
    source_path = models.CharField(max_length=1024, blank=True)
    # The same bytes found at other paths (in-place ingest): "also at" on the photo page.
    other_paths = models.JSONField(default=list, blank=True)
    # When an in-place photo's file was found gone (reconcile, ingest): hidden from search until it is back.
    missing_since = models.DateTimeField(null=True, blank=True)
    # Size and mtime of the source when referenced in place: a re-run skips files
    # whose size and mtime are unchanged without hashing them.
    source_size = models.BigIntegerField(null=True, blank=True)
    source_mtime = models.FloatField(null=True, blank=True)
    format = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    byte_size = models.BigIntegerField()
    phash = models.CharField(max_length=16, blank=True, help_text="perceptual hash (hex) for near-duplicates")
    # Digest of the decoded, upright pixels: equal for copies that differ only in
    # metadata or container (an EXIF edit, a PNG re-compressed), which SHA-256 misses.
    pixel_hash = models.CharField(max_length=32, blank=True)
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    trashed_at = models.DateTimeField(null=True, blank=True)

    # The vector itself lives in ImageVector; these say whether it exists and from which model.
    embedding_state = models.CharField(max_length=8, choices=Embedding.choices, default=Embedding.PENDING)
    embedding_model = models.CharField(max_length=200, blank=True)
    embedding_error = models.TextField(blank=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-added_at", "-id"]
        permissions = [("edit_library", "Can upload photos, edit metadata and resolve duplicates")]
        indexes = [
            models.Index(fields=["-added_at", "-id"], name="image_newest"),
            # The grid's order among live photos (trashed_at IS NULL): its pages, count and a photo's
            # neighbours walk this index from where they are instead of sorting the library.
            models.Index(fields=["trashed_at", "-added_at", "-id"], name="image_live_newest"),
            models.Index(fields=["embedding_state"], name="image_embedding_state"),
            # Photos waiting for embeddings, asked by every gallery and search page: with only the
            # single-column indexes SQLite chose trashed_at (every live photo) and counted 10k rows.
            models.Index(fields=["embedding_state", "trashed_at"], name="image_waiting"),
            models.Index(fields=["format"], name="image_format"),
            # The trash page counts its photos and sums their bytes from this index alone, not a scan of every photo.
            models.Index(fields=["trashed_at", "byte_size"], name="image_trashed_size"),
            # The searchable photos' ids (search.sync.indexable), read whole by the duplicate scan, the
            # column cache and reconcile: from this index, in id order, instead of every photo's row.
            models.Index(
                fields=["trashed_at", "embedding_state", "missing_since", "embedding_model", "id"],
                name="image_searchable",
            ),
            models.Index(fields=["source_path"], name="image_source_path"),
            models.Index(fields=["phash"], name="image_phash"),
            models.Index(fields=["pixel_hash"], name="image_pixel_hash"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"), name="image_sha256_hex"),
            models.CheckConstraint(condition=models.Q(width__gt=0, height__gt=0), name="image_has_pixels"),
            models.CheckConstraint(condition=models.Q(byte_size__gte=0), name="image_byte_size_positive"),
        ]

    def __str__(self) -> str:
        return self.original_name or self.sha256[:12]

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def is_trashed(self) -> bool:
        return self.trashed_at is not None

    @property
    def megapixels(self) -> float:
        return self.pixels / 1_000_000

    @property
    def shape(self) -> str:
        """How the photo page shows it: "tiny" (scaled up, pixels kept sharp), "panorama" (scrolls sideways
        at a readable height) or "" (fitted to the screen). A 1x1 icon or a 6000x150 strip is unusable fitted."""
        if max(self.width, self.height) < 240:
            return "tiny"
        if self.width > 5 * self.height:
            return "panorama"
        return ""


class ImageVector(models.Model):
    """An image's embedding (float32 bytes, see gallery.vectors), the source Chroma is rebuilt from.

    Kept out of the Image row on purpose: with a 2 KB blob inline, every filtered
    scan of photos read ~200 MB at 100k photos; apart, a scan reads only facts.
    """

    image = models.OneToOneField(Image, primary_key=True, related_name="vector", on_delete=models.CASCADE)
    data = models.BinaryField()

    def __str__(self) -> str:
        return f"vector of image {self.image_id}"


def _between(limit: int, name: str) -> list:
    message = f"{name} is between -{limit} and {limit} degrees."
    return [MinValueValidator(-limit, message), MaxValueValidator(limit, message)]


class Metadata(models.Model):
    image = models.OneToOneField(Image, primary_key=True, related_name="metadata", on_delete=models.CASCADE)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=64, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="photos")
    camera_make = models.CharField(max_length=64, blank=True)
    camera_model = models.CharField(max_length=64, blank=True)
    lens = models.CharField(max_length=128, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True)
    latitude = models.FloatField(null=True, blank=True, validators=_between(90, "Latitude"), help_text="degrees north")
    longitude = models.FloatField(
        null=True, blank=True, validators=_between(180, "Longitude"), help_text="degrees east"
    )
    location = models.CharField(max_length=200, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    # Derived: the words of the fields above, tags and file name, for full-text search (gallery.words).
    search_text = models.TextField(blank=True, default="", editable=False)

    class Meta:
        verbose_name_plural = "metadata"
        indexes = [
            models.Index(fields=["category"], name="metadata_category"),
            models.Index(fields=["camera_make", "camera_model"], name="metadata_camera"),
            models.Index(fields=["camera_model"], name="metadata_camera_model"),  # the sidebar's suggestions
            models.Index(fields=["taken_at", "image"], name="metadata_taken"),  # the grid sorted by date
            models.Index(fields=["latitude"], name="metadata_latitude"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True) | models.Q(latitude__gte=-90, latitude__lte=90),
                name="metadata_latitude_range",
            ),
            models.CheckConstraint(
                condition=models.Q(longitude__isnull=True) | models.Q(longitude__gte=-180, longitude__lte=180),
                name="metadata_longitude_range",
            ),
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True, longitude__isnull=True)
                | models.Q(latitude__isnull=False, longitude__isnull=False),
                name="metadata_gps_pair",
            ),
        ]

    def __str__(self) -> str:
        return self.title or str(self.image)

    @property
    def camera(self) -> str:
        """Make and model as people say it ("Canon EOS R5", not "Canon Canon EOS R5")."""
        if self.camera_model.lower().startswith(self.camera_make.lower()):
            return self.camera_model
        return " ".join(part for part in (self.camera_make, self.camera_model) if part)

    @property
    def has_gps(self) -> bool:
        return self.latitude is not None


class Album(models.Model):
    """A collection the team shares; a photo can be in many. Deleting an album leaves its photos alone."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    photos = models.ManyToManyField(Image, blank=True, related_name="albums")
    cover = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="album_name_unique_ignoring_case",
                violation_error_message="There is already an album with this name.",
            ),
            models.CheckConstraint(
                condition=~models.Q(name=""), name="album_name_not_empty", violation_error_message="Name the album."
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Favourite(models.Model):
    """A photo one person starred: their own, though the team's filters can ask for anyone's."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourites")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="favourites")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "image"], name="favourite_once")]


class LibraryVersion(models.Model):
    """A counter bumped after every committed change to photos, metadata or tags (gallery.versions).

    Pages cache what they render under it, so any process knows when its cache is stale.
    """

    name = models.CharField(max_length=32, unique=True)
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"
