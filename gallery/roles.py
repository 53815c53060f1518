"""The two roles of a team library, as Django groups with permissions."""

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
