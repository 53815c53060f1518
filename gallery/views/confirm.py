"""The no-JS half of "confirm before anything is destroyed": a page that asks, then re-posts.

With JavaScript, the button's own `hx-confirm` dialog asks and the request carries
`confirmed=1`; a request without it gets this page instead of the action.
"""

from django.shortcuts import render
from django.template.defaultfilters import filesizeformat


def confirmation_page(
    request, *, question: str, photos: list, action: str, cancel_url: str, button: str, danger: bool = False
):
    """Ask the question about these photos; the answer re-posts the request to action with confirmed=1."""
    fields = [
        (key, value)
        for key, values in request.POST.lists()
        for value in values
        if key not in ("csrfmiddlewaretoken", "confirmed")
    ]
    size = sum(photo.byte_size for photo in photos)
    context = {
        "question": question.format(count=len(photos), size=filesizeformat(size)),
        "photos": photos[:60],
        "more": max(0, len(photos) - 60),
        "fields": fields,
        "action": action,
        "cancel_url": cancel_url,
        "button": button,
        "danger": danger,
    }
    return render(request, "confirm.html", context)
