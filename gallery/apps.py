from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Photo library"
    default_auto_field = "django.db.models.BigAutoField"
