"""The duplicate-review pages (editor role): queue, scan with progress, decisions, trash."""

from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from gallery.models import Image
from gallery.roles import EDIT_PERMISSION
from gallery.services import image_delete, image_restore, image_trash, metadata_merge
from search.duplicates import duplicate_groups, start_scan, tier_counts
from search.models import DuplicateScan, NotDuplicate, Tier

editor_required = permission_required(EDIT_PERMISSION, raise_exception=True)


def _ids(request) -> list[int]:
    return sorted({int(value) for value in request.POST.getlist("ids") if value.isdigit()})


@require_GET
@editor_required
def review(request):
    tier = request.GET.get("tier") if request.GET.get("tier") in Tier.values else None
    all_groups = duplicate_groups()
    groups = [g for g in all_groups if g.tier == tier] if tier else all_groups
    context = {
        "groups": groups[:50], "more": max(0, len(groups) - 50), "counts": tier_counts(all_groups),
        "tiers": Tier, "tier": tier, "scan": DuplicateScan.objects.first(),
        "trash_count": Image.objects.trashed().count(),
        "bytes_to_free": sum(g.bytes_to_free for g in groups),
    }
    return render(request, "search/duplicates.html", context)


@require_POST
@editor_required
def scan_start(request):
    scan = start_scan(incremental=request.POST.get("incremental") == "1", background=True)
    return render(request, "search/duplicates.html#scan_status", {"scan": scan})


@require_GET
@editor_required
def scan_status(request, pk: int):
    if not request.htmx:  # opened directly: the whole page, which shows the scan too
        return review(request)
    scan = get_object_or_404(DuplicateScan, pk=pk)
    return render(request, "search/duplicates.html#scan_status", {"scan": scan})


@require_POST
@editor_required
def resolve(request):
    ids = _ids(request)
    images = list(Image.objects.live().filter(pk__in=ids).select_related("metadata"))
    if len(images) < 2:
        return HttpResponse("This group needs at least two photos still in the library.", status=400)
    action = request.POST.get("action")
    if action == "keep":
        keeper = next((i for i in images if str(i.pk) == request.POST.get("keeper")), None)
        if keeper is None:
            return HttpResponse("Choose the photo to keep.", status=400)
        others = [i for i in images if i.pk != keeper.pk]
        merged = metadata_merge(keeper=keeper, others=others)
        image_trash(images=others)
        message = f"Kept {keeper.original_name}; {len(others)} moved to the trash" + (
            f"; merged {', '.join(merged)}" if merged else "") + "."
    elif action == "not_duplicates":
        for position, first in enumerate(ids):
            for second in ids[position + 1 :]:
                NotDuplicate.objects.get_or_create(image_a_id=first, image_b_id=second,
                                                   defaults={"decided_by": request.user})
        message = "Marked as not duplicates; they will not be suggested again."
    else:
        return HttpResponse("Unknown action.", status=400)
    return render(request, "search/duplicates.html#resolved", {"message": message})


@require_GET
@editor_required
def trash(request):
    from django.conf import settings

    photos = Image.objects.trashed().select_related("metadata").order_by("-trashed_at")[:200]
    return render(request, "search/trash.html", {"photos": photos, "days": settings.IMGSIM_TRASH_DAYS})


@require_POST
@editor_required
def trash_action(request):
    ids = _ids(request)
    photos = list(Image.objects.trashed().filter(pk__in=ids))
    if request.POST.get("action") == "restore":
        image_restore(images=photos)
        message = f"Restored {len(photos)} photo(s) to the library."
    elif request.POST.get("action") == "delete":
        message = f"Deleted {image_delete(images=photos)} photo(s) for good."
    else:
        return HttpResponse("Unknown action.", status=400)
    if request.htmx:
        return render(request, "search/duplicates.html#resolved", {"message": message})
    return trash(request)
