from gallery.roles import can_edit


def roles(request):
    """Expose what the current user may do, so templates show only usable actions.

    A function, asked only by a template that shows an action: a partial without any
    (search results, a grid's next page) skips the two permission queries a user
    who is not a superuser costs.
    """
    user = getattr(request, "user", None)
    return {"can_edit": lambda: bool(user and can_edit(user))}


def trash(request):
    """The trash's size for the header, computed only if a template shows it (editors)."""

    def count() -> int:
        from gallery.models import Image

        return Image.objects.trashed().count()

    return {"trash_count": count}


def favourites(request):
    """The ids of the photos this person starred, as JSON, for the stars on (shared, cached) cards."""

    def ids_json() -> str:
        import json

        from gallery.selectors import starred_ids

        return json.dumps(sorted(starred_ids(request)))

    return {"my_favourites_json": ids_json}
