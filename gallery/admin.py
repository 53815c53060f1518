from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count, IntegerField, Max, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from gallery.models import Image, Metadata, Tag
from gallery.services import image_delete, image_trash


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


class InTrashFilter(admin.SimpleListFilter):
    title = "trash"
    parameter_name = "trash"

    def lookups(self, request, model_admin):
        return [("no", "in the library"), ("yes", "in the trash")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(trashed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(trashed_at__isnull=True)
        return queryset


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
        # Every year from the latest photo's to the earliest's, from the ends of the taken_at index:
        # listing the distinct years of every photo read the whole table on every page of the list.
        # (one aggregate a query: SQLite reads MIN or MAX alone from the index, both together by a scan)
        first = Metadata.objects.aggregate(first=Min("taken_at"))["first"]
        last = Metadata.objects.aggregate(last=Max("taken_at"))["last"]
        if first is None:
            return []
        return [(str(year), str(year)) for year in range(last.year, first.year - 1, -1)]

    def has_output(self):
        # A year in the address filters even when no photo has a date (no years to offer): Django drops
        # a filter without output, and the list showed every photo.
        return super().has_output() or self.value() is not None

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if self.value().isdigit() and 1 <= int(self.value()) <= 9999:
            return queryset.filter(metadata__taken_at__year=int(self.value()))
        return queryset.none()  # no photo was taken in "abc" or year 10**20 (the database cannot hold it)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    inlines = [MetadataInline]
    list_display = [
        "thumbnail",
        "original_name",
        "title",
        "category",
        "format",
        "dimensions",
        "added_at",
        "embedding_state",
    ]
    list_display_links = ["thumbnail", "original_name"]
    # "added_at" as a filter (today, this month, ...), not a date_hierarchy: that lists the distinct
    # months of every photo, a read of the whole table on every page of the list.
    list_filter = [
        InTrashFilter,
        CategoryFilter,
        CameraFilter,
        TagFilter,
        YearTakenFilter,
        "added_at",
        "format",
        "embedding_state",
    ]
    search_fields = ["metadata__title", "original_name", "metadata__tags__name", "metadata__description"]
    list_select_related = ["metadata"]
    list_per_page = 50
    readonly_fields = [
        "preview",
        "sha256",
        "file",
        "in_place",
        "source_path",
        "format",
        "width",
        "height",
        "byte_size",
        "phash",
        "added_at",
        "added_by",
        "embedding_state",
        "embedding_model",
        "embedding_error",
        "trashed_at",
    ]
    fieldsets = [(None, {"fields": readonly_fields})]

    actions = ["trash_selected", "delete_for_good"]

    def has_add_permission(self, request):
        return False  # photos come in through ingest or upload, which make files and renditions

    # One trash for everything: the admin's Delete moves photos to the trash, like every
    # page does; deleting for good is a separate, confirmed action.
    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj):
        image_trash(images=[obj])

    def delete_queryset(self, request, queryset):
        image_trash(images=list(queryset))

    def _moved_message(self, text: str):
        return format_html('{} <a href="{}">Open the trash</a> to restore.', text, reverse("gallery:trash"))

    def response_delete(self, request, obj_display, obj_id):
        self.message_user(request, self._moved_message(f"“{obj_display}” was moved to the trash."), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:gallery_image_changelist"))

    def _confirm(self, request, photos, *, action: str, question: str, button: str, danger: bool = False):
        size = filesizeformat(sum(photo.byte_size for photo in photos))
        return TemplateResponse(
            request,
            "admin/gallery/image/confirm_action.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": button,
                "question": question.format(count=len(photos), size=size),
                "photos": photos,
                "action": action,
                "button": button,
                "danger": danger,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Move selected photos to the trash", permissions=["delete"])
    def trash_selected(self, request, queryset):
        photos = list(queryset.filter(trashed_at__isnull=True))
        if request.POST.get("post") != "yes":
            return self._confirm(
                request,
                photos,
                action="trash_selected",
                button="Move to the trash",
                question="Move {count} photo(s) ({size}) to the trash? They can be restored there.",
            )
        moved = image_trash(images=photos)
        self.message_user(request, self._moved_message(f"{moved} photo(s) moved to the trash."), messages.SUCCESS)
        return None

    @admin.action(description="Delete selected photos for good (cannot be undone)", permissions=["delete"])
    def delete_for_good(self, request, queryset):
        photos = list(queryset)
        if request.POST.get("post") != "yes":
            return self._confirm(
                request,
                photos,
                action="delete_for_good",
                button="Delete for good",
                danger=True,
                question="Delete {count} photo(s) ({size}) for good, files included? This cannot be undone.",
            )
        deleted = image_delete(images=photos)
        self.message_user(request, f"{deleted} photo(s) deleted for good.", messages.SUCCESS)
        return None

    @admin.display(description="")
    def thumbnail(self, image):
        url = reverse("gallery:rendition", args=[image.pk, "thumb"])
        return format_html(
            '<img src="{}" alt="" width="64" height="64" style="object-fit:cover;border-radius:4px">', url
        )

    @admin.display(description="preview")
    def preview(self, image):
        url = reverse("gallery:rendition", args=[image.pk, "preview"])
        return format_html('<img src="{}" alt="" style="max-width:480px;max-height:360px">', url)

    @admin.display(description="title", ordering="metadata__title")
    def title(self, image):
        return image.metadata.title

    @admin.display(description="category", ordering="metadata__category")
    def category(self, image):
        return image.metadata.category

    @admin.display(description="size")
    def dimensions(self, image):
        return f"{image.width}×{image.height}"


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "photo_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        # Each tag counted from the tag index alone, not by joining every membership to its photo.
        memberships = (
            Metadata.tags.through.objects.filter(tag_id=OuterRef("pk"))
            .order_by()
            .values("tag_id")
            .annotate(n=Count("id"))
        )
        count = Coalesce(Subquery(memberships.values("n"), output_field=IntegerField()), 0)
        return super().get_queryset(request).annotate(photo_count=count)

    @admin.display(ordering="photo_count", description="photos")
    def photo_count(self, tag):
        return tag.photo_count
