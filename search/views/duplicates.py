"""The duplicate-review pages (editor role): queue, scan with progress, decisions and their undo."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh, reswap, retarget

from gallery.forms import PhotoIdsField
from gallery.models import Image
from gallery.roles import editor_required
from gallery.views.confirm import confirmation_page
from search.duplicates import duplicate_groups, start_scan
from search.duplicates.groups import review_queue
from search.duplicates.review import ReviewError, decide, decision_undo
from search.models import DuplicateScan, Tier

UNDO_SESSION_KEY = "imgsim-duplicates-undo"
SHOWN = 50


class DecisionForm(forms.Form):
    group = forms.IntegerField(min_value=1)  # the keeper the page suggested: the centre of the star
    ids = PhotoIdsField()
    keeper = forms.IntegerField(required=False, min_value=1)
    trash = PhotoIdsField(required=False)
    action = forms.ChoiceField(choices=[("keep", "keep one"), ("not_duplicates", "keep all")])
    confirmed = forms.BooleanField(required=False)

    def needs_confirmation(self) -> bool:
        data = self.cleaned_data
        return data["action"] == "keep" and bool(data["trash"]) and not data["confirmed"]

    def decision(self) -> dict:
        data = self.cleaned_data
        return {
            "action": data["action"],
            "center_id": data["group"],
            "keeper_id": data["keeper"],
            "member_ids": [pk for pk in data["ids"] if pk != data["group"]],
            "trash_ids": data["trash"],
        }


def _summary(groups=None) -> dict:
    groups = duplicate_groups() if groups is None else groups
    return {"group_count": len(groups), "bytes_to_free": sum(g.bytes_to_free for g in groups)}


@require_GET
@editor_required(to="review duplicates")
def review(request):
    tier = request.GET.get("tier") if request.GET.get("tier") in Tier.values else None
    groups, counts = review_queue(tier=tier)
    context = {
        "groups": groups[:SHOWN],
        "more": max(0, len(groups) - SHOWN),
        "counts": counts,
        "tiers": Tier,
        "tier": tier,
        "scan": DuplicateScan.objects.first(),
        # A scan started or running on a page with no group to review shows its results when it ends.
        "show_when_done": not groups,
        **_summary(groups),
        "undo_token": request.session.pop(UNDO_SESSION_KEY, None),
        "preselect": settings.IMGSIM_DUPLICATE_PRESELECT,
    }
    return render(request, "search/duplicates.html", context)


@require_POST
@editor_required(to="scan for duplicates")
def scan_start(request):
    scan = start_scan(incremental=request.POST.get("incremental") == "1", background=True)
    show = request.POST.get("show_when_done") == "1"
    return render(request, "search/duplicates.html#scan_status", {"scan": scan, "show_when_done": show})


@require_GET
@editor_required(to="scan for duplicates")
def scan_status(request, pk: int):
    if not request.htmx:  # opened directly: the whole page, which shows the scan too
        return review(request)
    scan = get_object_or_404(DuplicateScan, pk=pk)
    show = request.GET.get("show_when_done") == "1"
    if show and scan.status == DuplicateScan.Status.DONE and scan.pairs:
        return HttpResponseClientRefresh()  # the page held no group to lose: load it with the new ones
    return render(request, "search/duplicates.html#scan_status", {"scan": scan, "show_when_done": show})


def _refused(request, message: str, group: str):
    if not request.htmx:
        messages.error(request, message)
        return redirect("search:duplicates")
    response = render(request, "search/duplicates.html#review_error", {"message": message}, status=400)
    return reswap(retarget(response, f"#group-{group} .review-error"), "innerHTML")


@require_POST
@editor_required(to="resolve duplicates")
def resolve(request):
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _refused(request, "This decision is incomplete; reload the page.", request.POST.get("group", ""))
    if form.needs_confirmation():
        return confirmation_page(
            request,
            question="Move {count} photos ({size}) to the trash? Undo brings them back.",
            photos=list(Image.objects.filter(pk__in=form.cleaned_data["trash"])),
            action=reverse("search:duplicates_resolve"),
            cancel_url=reverse("search:duplicates"),
            button="Move to the trash",
        )
    try:
        decision = decide(**form.decision(), user=request.user)
    except ReviewError as error:
        return _refused(request, str(error), str(form.cleaned_data["group"]))
    if not request.htmx:
        messages.success(request, decision.message)
        request.session[UNDO_SESSION_KEY] = decision.undo_token
        return redirect("search:duplicates")
    return render(request, "search/duplicates.html#resolved", {"decision": decision, **_summary(), "oob": True})


@require_POST
@editor_required(to="undo duplicate decisions")
def undo(request):
    try:
        messages.success(request, decision_undo(token=request.POST.get("token", "")))
    except ReviewError as error:
        messages.error(request, str(error))
    return redirect("search:duplicates")
