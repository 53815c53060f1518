from gallery.roles import can_edit


def roles(request):
    """Expose what the current user may do, so templates show only usable actions."""
    user = getattr(request, "user", None)
    return {"can_edit": bool(user and can_edit(user))}
