from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.crypto import get_random_string

from gallery.roles import EDITOR, VIEWER


class Command(BaseCommand):
    help = (
        "Create a team member, or change an existing one's role or password. Viewers browse and search; "
        "editors also upload, edit metadata (in the admin) and resolve duplicates. Prints a generated "
        "password once unless --password is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=[VIEWER, EDITOR], default=VIEWER, help="default: viewer")
        parser.add_argument("--password", default=None, help="password (default: generate one and print it)")
        parser.add_argument("--email", default="")

    @transaction.atomic
    def handle(self, *, username, role, password, email, **options):
        users = get_user_model()
        user, created = users.objects.get_or_create(username=username, defaults={"email": email})
        if not created and user.is_superuser:
            raise CommandError(f"{username} is an administrator; change it in the admin instead")
        generated = password is None and created
        if password is not None or created:
            password = password or get_random_string(20)
            user.set_password(password)
        # Editors edit metadata in the admin, which needs staff status; their group limits what they can change.
        user.is_staff = role == EDITOR
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {role} {username}."))
        if generated:
            self.stdout.write(f"Password (shown once): {password}")
