from django.apps import AppConfig


class ImgsimSiteConfig(AppConfig):
    name = "imgsim_site"
    verbose_name = "imgsim"
