"""The trash (editors): restore or delete for good, one photo or many, and "Move to trash" on a photo."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from gallery.forms import SelectionForm
from gallery.models import Image
from gallery.roles import editor_required
from gallery.selectors import trash_page, trash_summary
from gallery.services import image_delete, image_restore, image_trash
from gallery.views import posted_next
from gallery.views.confirm import confirmation_page


def _plural(count: int) -> str:
    return f"{count} photo{'s' if count != 1 else ''}"


@require_GET
@editor_required(to="see the trash")
def trash(request):
    context = {
        "page": trash_page(page=request.GET.get("page", 1)),
        "summary": trash_summary(),
        "days": settings.IMGSIM_TRASH_DAYS,
    }
    return render(request, "gallery/trash.html#trash_list" if request.htmx else "gallery/trash.html", context)


def _answer(request, message: str, *, error: bool = False, status: int = 200):
    """The trash list with a message (HTMX), or Post/Redirect/Get back to the trash page."""
    if request.htmx:
        context = {
            "page": trash_page(page=request.POST.get("page", 1)),
            "summary": trash_summary(),
            "days": settings.IMGSIM_TRASH_DAYS,
            "message": message,
            "error": error,
        }
        return render(request, "gallery/trash.html#trash_list", context, status=status)
    (messages.error if error else messages.success)(request, message)
    return redirect(posted_next(request, f"{reverse('gallery:trash')}?page={request.POST.get('page', 1)}"))


@require_POST
@editor_required(to="restore photos")
def trash_restore(request):
    form = SelectionForm(request.POST)
    if not form.is_valid():
        return _answer(request, " ".join(form.non_field_errors() + form.errors.get("ids", [])), error=True, status=400)
    restored = image_restore(images=form.photos(Image.objects.trashed()))
    return _answer(request, f"Restored {_plural(restored)} to the library.")


@require_POST
@editor_required(to="delete photos for good")
def trash_delete(request):
    form = SelectionForm(request.POST)
    if not form.is_valid():
        return _answer(request, " ".join(form.non_field_errors() + form.errors.get("ids", [])), error=True, status=400)
    photos = form.photos(Image.objects.trashed())
    if not form.cleaned_data["confirmed"]:
        return confirmation_page(
            request,
            question="Delete {count} photos ({size}) for good? This cannot be undone.",
            photos=photos,
            action=reverse("gallery:trash_delete"),
            cancel_url=reverse("gallery:trash"),
            button="Delete for good",
            danger=True,
        )
    return _answer(request, f"Deleted {_plural(image_delete(images=photos))} for good.")


@require_POST
@editor_required(to="move photos to the trash")
def image_to_trash(request, pk: int):
    image = get_object_or_404(Image.objects.live(), pk=pk)
    image_trash(images=[image])
    if request.htmx:
        return render(request, "gallery/detail.html#trashed", {"image": image})
    messages.success(request, f"Moved {image.original_name} to the trash; restore it from there.")
    return redirect("gallery:trash")
