from django.contrib import admin

from search.models import IndexOutbox


@admin.register(IndexOutbox)
class IndexOutboxAdmin(admin.ModelAdmin):
    list_display = ["image_id", "created_at"]
    readonly_fields = ["image_id", "created_at"]
