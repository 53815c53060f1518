from django.apps import AppConfig


class ImgsimSiteConfig(AppConfig):
    name = "imgsim_site"
    verbose_name = "imgsim"

    def ready(self):
        from django.core import checks

        from imgsim_site.checks import static_files

        checks.register(static_files, "imgsim")
