import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string


class Command(BaseCommand):
    help = (
        "Create the administrator account 'admin' when no administrator exists. The password comes from "
        "IMGSIM_ADMIN_PASSWORD, or is generated and printed once. Does nothing on later runs."
    )

    def handle(self, **options):
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        password = os.environ.get("IMGSIM_ADMIN_PASSWORD") or get_random_string(20)
        users.objects.create_superuser("admin", "", password)
        self.stdout.write(self.style.SUCCESS("Created administrator 'admin'."))
        if not os.environ.get("IMGSIM_ADMIN_PASSWORD"):
            self.stdout.write(f"Password (shown once, change it in the admin): {password}")
