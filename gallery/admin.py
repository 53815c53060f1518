from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from gallery.models import Image, Metadata, Tag


class MetadataInline(admin.StackedInline):
    model = Metadata
    can_delete = False
    filter_horizontal = ["tags"]
    fieldsets = [
        (None, {"fields": ["title", "description", "category", "tags", "location"]}),
        ("Camera", {"fields": ["camera_make", "camera_model", "lens", "taken_at"]}),
        ("Position", {"fields": ["latitude", "longitude"]}),
        ("More", {"fields": ["extra"], "classes": ["collapse"]}),
    ]


class CategoryFilter(admin.SimpleListFilter):
    title = "category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        values = Metadata.objects.exclude(category="").values_list("category", flat=True).distinct()
        return [(value, value) for value in values.order_by("category")[:50]]

    def queryset(self, request, queryset):
        return queryset.filter(metadata__category=self.value()) if self.value() else queryset


class CameraFilter(admin.SimpleListFilter):
    title = "camera"
    parameter_name = "camera"

    def lookups(self, request, model_admin):
        values = Metadata.objects.exclude(camera_model="").values_list("camera_model", flat=True).distinct()
        return [(value, value) for value in values.order_by("camera_model")[:50]]

    def queryset(self, request, queryset):
        return queryset.filter(metadata__camera_model=self.value()) if self.value() else queryset


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        return [(tag.name, tag.name) for tag in Tag.objects.all()[:100]]

    def queryset(self, request, queryset):
        return queryset.filter(metadata__tags__name=self.value()) if self.value() else queryset


class YearTakenFilter(admin.SimpleListFilter):
    title = "year taken"
    parameter_name = "year"

    def lookups(self, request, model_admin):
        years = Metadata.objects.exclude(taken_at=None).dates("taken_at", "year", order="DESC")
        return [(str(d.year), str(d.year)) for d in years]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(metadata__taken_at__year=int(self.value()))
        return queryset


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    inlines = [MetadataInline]
    list_display = ["thumbnail", "original_name", "title", "category", "format", "dimensions", "added_at", "embedding_state"]
    list_display_links = ["thumbnail", "original_name"]
    list_filter = [CategoryFilter, CameraFilter, TagFilter, YearTakenFilter, "format", "embedding_state"]
    search_fields = ["metadata__title", "original_name", "metadata__tags__name", "metadata__description"]
    list_select_related = ["metadata"]
    list_per_page = 50
    date_hierarchy = "added_at"
    readonly_fields = ["preview", "sha256", "file", "in_place", "source_path", "format", "width", "height", "byte_size",
                       "phash", "added_at", "added_by", "embedding_state", "embedding_model", "embedding_error", "trashed_at"]
    fieldsets = [(None, {"fields": readonly_fields})]

    def has_add_permission(self, request):
        return False  # photos come in through ingest or upload, which make files and renditions

    @admin.display(description="")
    def thumbnail(self, image):
        url = reverse("gallery:rendition", args=[image.pk, "thumb"])
        return format_html('<img src="{}" alt="" width="64" height="64" style="object-fit:cover;border-radius:4px">', url)

    @admin.display(description="preview")
    def preview(self, image):
        url = reverse("gallery:rendition", args=[image.pk, "preview"])
        return format_html('<img src="{}" alt="" style="max-width:480px;max-height:360px">', url)

    @admin.display(description="title", ordering="metadata__title")
    def title(self, image):
        return image.metadata.title if hasattr(image, "metadata") else ""

    @admin.display(description="category", ordering="metadata__category")
    def category(self, image):
        return image.metadata.category if hasattr(image, "metadata") else ""

    @admin.display(description="size")
    def dimensions(self, image):
        return f"{image.width}×{image.height}"


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "photo_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(photo_count=Count("photos"))

    @admin.display(ordering="photo_count", description="photos")
    def photo_count(self, tag):
        return tag.photo_count
