"""The two roles of a team library, as Django groups with permissions."""

import functools

from django.core.exceptions import PermissionDenied

VIEWER = "viewer"
EDITOR = "editor"

# Editors also get the model permissions that the admin's metadata pages need.
ROLE_PERMISSIONS = {
    VIEWER: [],
    EDITOR: [
        "gallery.edit_library",
        "gallery.view_image",
        "gallery.change_image",
        "gallery.view_metadata",
        "gallery.change_metadata",
        "gallery.view_tag",
        "gallery.add_tag",
        "gallery.change_tag",
        "gallery.delete_tag",
    ],
}

EDIT_PERMISSION = "gallery.edit_library"


def can_edit(user) -> bool:
    return user.is_authenticated and user.has_perm(EDIT_PERMISSION)


def ensure_roles(group_model, permission_model) -> None:
    """Create the role groups with their permissions; safe to repeat."""
    for role, dotted_names in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        for dotted in dotted_names:
            app_label, codename = dotted.split(".")
            permission = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                group.permissions.add(permission)


def ensure_roles_after_migrate(sender, **kwargs) -> None:
    # `flush` (and so every TransactionTestCase) empties the groups a data migration
    # made; post_migrate runs after both, once permissions exist.
    from django.contrib.auth.models import Group, Permission

    ensure_roles(Group, Permission)


def editor_required(view=None, *, to: str = ""):
    """Let only editors use a view: 403 for others, saying what needs the role ("Only editors can {to}.").

    The view is marked too, so imgsim_site.middleware.BodyGuardMiddleware refuses
    others before their request body (an upload) is read at all.
    """
    if view is None:
        return functools.partial(editor_required, to=to)

    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not can_edit(request.user):
            what = f"Only editors can {to}." if to else "This needs the editor role."
            raise PermissionDenied(
                f"{what} An administrator can give you the editor role (manage.py createuser NAME --role editor)."
            )
        return view(request, *args, **kwargs)

    guarded.required_permission = EDIT_PERMISSION
    return guarded
