from django.apps import AppConfig


class ImgsimSiteConfig(AppConfig):
    name = "imgsim_site"
    verbose_name = "imgsim"

    def ready(self):
        from django.core import checks

        from imgsim_site.checks import static_files

        # A deployment check only: migrate and collectstatic itself run the ordinary checks.
        checks.register(static_files, "imgsim", deploy=True)
