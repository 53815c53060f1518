from gallery.roles import can_edit


def roles(request):
    """Expose what the current user may do, so templates show only usable actions."""
    user = getattr(request, "user", None)
    return {"can_edit": bool(user and can_edit(user))}


def trash(request):
    """The trash's size for the header, computed only if a template shows it (editors)."""

    def count() -> int:
        from gallery.models import Image

        return Image.objects.trashed().count()

    return {"trash_count": count}
