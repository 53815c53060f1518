"""Decisions on review groups: keep one and trash the ticked others, or keep all; and their undo.

Every decision is checked against the stored pairs (a posted id that is not in the
group is refused), applied in one transaction, and answered with an undo token: a
signed description of exactly what changed, which `decision_undo` reverses.
"""

from dataclasses import dataclass

from django.core import signing
from django.db import transaction
from django.db.models import Q

from gallery.models import Image
from gallery.services import MERGE_LABELS, image_restore, image_trash, metadata_merge, metadata_unmerge
from search.models import DuplicatePair, NotDuplicate

UNDO_SALT = "imgsim.duplicates.undo"


class ReviewError(ValueError):
    """The posted decision does not fit the group; nothing was changed."""


@dataclass
class Decision:
    message: str
    undo_token: str
    trashed: list[Image]


def _group(center_id: int, member_ids: list[int]) -> dict[int, Image]:
    """Return {id: photo} of a group shown on the page, after checking it against the stored pairs."""
    ids = {center_id, *member_ids}
    if len(ids) < 2:
        raise ReviewError("This group needs at least two photos.")
    paired = set()
    for a, b in DuplicatePair.objects.filter(Q(image_a=center_id) | Q(image_b=center_id)).values_list(
        "image_a_id", "image_b_id"
    ):
        paired.add(b if a == center_id else a)
    strangers = ids - paired - {center_id}
    if strangers:
        raise ReviewError(f"Photo(s) {', '.join(map(str, sorted(strangers)))} are not in this group; reload the page.")
    photos = Image.objects.live().select_related("metadata").in_bulk(ids)
    if len(photos) < len(ids):
        gone = sorted(ids - set(photos))
        raise ReviewError(f"Photo(s) {', '.join(map(str, gone))} are no longer in the library; reload the page.")
    return photos


def decision_keep(*, center_id: int, member_ids: list[int], keeper_id: int, trash_ids: list[int], user) -> Decision:
    """Keep keeper_id, move exactly trash_ids to the trash (merging their metadata into the keeper).

    Members left unticked stay in the library and are remembered as not duplicates
    of the keeper, so the group does not come back with them.
    """
    photos = _group(center_id, member_ids)
    if keeper_id not in photos:
        raise ReviewError("Choose the photo to keep.")
    if keeper_id in trash_ids:
        raise ReviewError("The photo to keep is also ticked for the trash; untick it.")
    if not set(trash_ids) <= set(photos):
        raise ReviewError("A ticked photo is not in this group; reload the page.")
    keeper = photos[keeper_id]
    trashed = [photos[pk] for pk in sorted(set(trash_ids))]
    kept = [pk for pk in photos if pk != keeper_id and pk not in trash_ids]
    with transaction.atomic():
        merged = metadata_merge(keeper=keeper, others=trashed) if trashed else {}
        image_trash(images=trashed)
        refused = _refuse(keeper_id, kept, user)
    parts = [f"Kept {keeper.original_name}"]
    if trashed:
        parts.append(f"moved {len(trashed)} photo{'s' if len(trashed) != 1 else ''} to the trash")
    if kept:
        parts.append(
            f"{len(kept)} unticked photo{'s' if len(kept) != 1 else ''} stay{'s' if len(kept) == 1 else ''} "
            "and will not be suggested with it again"
        )
    if merged:
        parts.append(f"merged {', '.join(MERGE_LABELS.get(name, name) for name in merged)} into the keeper")
    undo = {"trashed": [p.pk for p in trashed], "keeper": keeper_id, "merged": merged, "refused": refused}
    return Decision("; ".join(parts) + ".", signing.dumps(undo, salt=UNDO_SALT), trashed)


def decision_not_duplicates(*, center_id: int, member_ids: list[int], user) -> Decision:
    """Remember that the members are not duplicates of the group's keeper (one row per member)."""
    photos = _group(center_id, member_ids)
    with transaction.atomic():
        refused = _refuse(center_id, [pk for pk in photos if pk != center_id], user)
    undo = {"trashed": [], "keeper": center_id, "merged": {}, "refused": refused}
    return Decision(
        "Marked as not duplicates; they will not be suggested together again.", signing.dumps(undo, salt=UNDO_SALT), []
    )


def _refuse(keeper_id: int, others: list[int], user) -> list[list[int]]:
    """Record keeper~other as not duplicates; return the pairs that were new (for undo)."""
    wanted = {(min(keeper_id, pk), max(keeper_id, pk)) for pk in others}
    existing = set(
        NotDuplicate.objects.filter(image_a__in=[a for a, _ in wanted], image_b__in=[b for _, b in wanted]).values_list(
            "image_a_id", "image_b_id"
        )
    )
    new = sorted(wanted - existing)
    NotDuplicate.objects.bulk_create([NotDuplicate(image_a_id=a, image_b_id=b, decided_by=user) for a, b in new])
    return [list(pair) for pair in new]


def decision_undo(*, token: str) -> str:
    """Reverse a decision described by its undo token; return what was done."""
    try:
        undo = signing.loads(token, salt=UNDO_SALT)
    except signing.BadSignature:
        raise ReviewError("This undo link is not valid.") from None
    with transaction.atomic():
        restored = list(Image.objects.trashed().filter(pk__in=undo["trashed"]))
        image_restore(images=restored)
        keeper = Image.objects.select_related("metadata").filter(pk=undo["keeper"]).first()
        if keeper is not None and undo["merged"]:
            metadata_unmerge(keeper=keeper, merged=undo["merged"])
        for a, b in undo["refused"]:
            NotDuplicate.objects.filter(image_a_id=a, image_b_id=b).delete()
    if restored:
        return f"Undone: {len(restored)} photo{'s' if len(restored) != 1 else ''} restored from the trash."
    return "Undone: the photos will be suggested as duplicates again."


def decide(
    *, action: str, center_id: int, member_ids: list[int], keeper_id: int | None, trash_ids: list[int], user
) -> Decision:
    """Apply a decision taken on the review page: "keep" one (trashing the ticked) or "not_duplicates"."""
    if action == "not_duplicates":
        return decision_not_duplicates(center_id=center_id, member_ids=member_ids, user=user)
    return decision_keep(
        center_id=center_id, member_ids=member_ids, keeper_id=keeper_id or 0, trash_ids=trash_ids, user=user
    )
