"""Review groups: a keeper and the photos that are each directly a duplicate of it.

Pairs do not chain: A~B and B~C do not make A and C alike, so a group is a star,
never a connected component. Photos are ranked as keepers (most pixels, then
largest file, then most metadata, then the oldest); taking them best first, each
photo not yet in a group becomes the keeper of its direct partners that are not in
one either. Every member is shown with its own tier and similarity to the keeper,
and a group is labelled by its weakest member. A photo is in one group at a time;
pairs left out (B~C above) come back in a group once the first one is resolved.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings

from gallery.models import Image
from search.duplicates.scan import TIER_ORDER, pair_reason
from search.models import DuplicatePair, NotDuplicate, Tier


@dataclass
class Member:
    image: Image
    tier: str
    similarity: float
    hamming: int | None

    @property
    def tier_label(self) -> str:
        return Tier(self.tier).label

    @property
    def reason(self) -> str:
        return pair_reason(self.tier, self.similarity, self.hamming)

    @property
    def preselected(self) -> bool:
        """Ticked for the trash when the page opens: exact copies, and others only when nearly identical."""
        return self.tier == Tier.EXACT or self.similarity >= settings.IMGSIM_DUPLICATE_PRESELECT


@dataclass
class Group:
    keeper: Image
    keeper_reason: str
    members: list[Member] = field(default_factory=list)  # the others, best keeper candidate first

    @property
    def key(self) -> str:
        return str(self.keeper.pk)

    @property
    def tier(self) -> str:
        """The weakest member's tier: a group is only as alike as its least alike member."""
        return max((m.tier for m in self.members), key=lambda tier: TIER_ORDER[Tier(tier)])

    @property
    def tier_label(self) -> str:
        return Tier(self.tier).label

    @property
    def bytes_to_free(self) -> int:
        return sum(m.image.byte_size for m in self.members)

    @property
    def preselected(self) -> list[Member]:
        return [m for m in self.members if m.preselected]

    def as_dict(self) -> dict:
        """The group as the JSON API gives it."""
        return {
            "tier": self.tier,
            "keeper": self.keeper.pk,
            "keeper_filename": self.keeper.original_name,
            "keeper_reason": self.keeper_reason,
            "bytes_to_free": self.bytes_to_free,
            "members": [
                {
                    "id": m.image.pk,
                    "filename": m.image.original_name,
                    "tier": m.tier,
                    "similarity": m.similarity,
                    "hamming": m.hamming,
                    "reason": m.reason,
                }
                for m in self.members
            ],
        }


def star_groups(pairs: Iterable[tuple[int, int]], ranking: list[int]) -> list[tuple[int, list[int]]]:
    """Split a pair graph into stars: [(keeper, [members])], each member directly paired with its keeper.

    ranking lists every photo, best keeper first. Taken in that order, a photo not
    yet in a group becomes the keeper of its partners not yet in one. A photo that
    is still free when its turn comes has every better-ranked partner in a group
    already, so a keeper always outranks its members.
    """
    partners: dict[int, set[int]] = defaultdict(set)
    for a, b in pairs:
        if a != b:
            partners[a].add(b)
            partners[b].add(a)
    position = {pk: i for i, pk in enumerate(ranking)}
    taken: set[int] = set()
    groups = []
    for keeper in ranking:
        if keeper in taken or keeper not in partners:
            continue
        members = sorted((pk for pk in partners[keeper] if pk not in taken), key=position.__getitem__)
        if members:
            taken.add(keeper)
            taken.update(members)
            groups.append((keeper, members))
    return groups


def _richness(image: Image) -> int:
    meta = getattr(image, "metadata", None)
    if meta is None:
        return 0
    filled = [meta.title, meta.description, meta.category, meta.camera_model, meta.lens, meta.location]
    return (
        sum(1 for value in filled if value)
        + (meta.taken_at is not None)
        + (meta.latitude is not None)
        + len(meta.tags.all())
    )


def _rank(image: Image) -> tuple:
    return (image.pixels, image.byte_size, _richness(image), -image.pk)


def keeper_reason(best: Image, runner_up: Image) -> str:
    """Say why best is suggested over runner_up."""
    if best.pixels > runner_up.pixels:
        return f"most pixels ({best.width}×{best.height})"
    if best.byte_size > runner_up.byte_size:
        return "same size in pixels, largest file"
    if _richness(best) > _richness(runner_up):
        return "same pixels and file size, most metadata"
    return "identical by every measure; the oldest is suggested"


def choose_keeper(images: list[Image]) -> tuple[Image, str]:
    """Most pixels, then largest file, then most metadata; return the photo and why."""
    ranked = sorted(images, key=_rank, reverse=True)
    return ranked[0], keeper_reason(ranked[0], ranked[1])


def _waiting() -> tuple[dict, dict[int, Image], list[int]]:
    """Read the undecided pairs of live photos once: ({(a, b): (tier, similarity, hamming)}, photos, ranking)."""
    # Driven from the pairs, a few per hundred photos: as a join SQLite walked every live photo to
    # find its pairs, even for an empty queue.
    trashed = Image.objects.trashed().values("pk")
    pairs = DuplicatePair.objects.exclude(image_a_id__in=trashed).exclude(image_b_id__in=trashed)
    refused = set(NotDuplicate.objects.values_list("image_a_id", "image_b_id"))
    relation = {
        (a, b): (pair_tier, similarity, hamming)
        for a, b, pair_tier, similarity, hamming in pairs.values_list(
            "image_a_id", "image_b_id", "tier", "similarity", "hamming"
        )
        if (a, b) not in refused
    }
    ids = {pk for pair in relation for pk in pair}
    images = Image.objects.select_related("metadata").prefetch_related("metadata__tags").in_bulk(ids)
    return relation, images, sorted(images, key=lambda pk: _rank(images[pk]), reverse=True)


def _of_tier(relation: dict, tier: str | None) -> dict:
    return {pair: facts for pair, facts in relation.items() if facts[0] == tier} if tier else relation


def _groups(relation: dict, images: dict[int, Image], ranking: list[int]) -> list[Group]:
    groups = []
    for keeper_id, member_ids in star_groups(relation, ranking):
        keeper = images[keeper_id]
        members = [Member(images[pk], *relation[(min(pk, keeper_id), max(pk, keeper_id))]) for pk in member_ids]
        groups.append(Group(keeper=keeper, keeper_reason=keeper_reason(keeper, members[0].image), members=members))
    return sorted(groups, key=lambda g: (-g.bytes_to_free, g.keeper.pk))


def review_queue(*, tier: str | None = None) -> tuple[list[Group], dict[str, int]]:
    """The groups waiting for review (of one tier's pairs only, if given) and how many each tier makes, in one read."""
    relation, images, ranking = _waiting()
    counts = {choice.value: len(star_groups(_of_tier(relation, choice.value), ranking)) for choice in Tier}
    return _groups(_of_tier(relation, tier), images, ranking), counts


def duplicate_groups(*, tier: str | None = None) -> list[Group]:
    """Return the groups waiting for review (of one tier's pairs only, if given), biggest saving first."""
    relation, images, ranking = _waiting()
    return _groups(_of_tier(relation, tier), images, ranking)


def tier_counts() -> dict[str, int]:
    """How many groups each tier's pairs make on their own (the numbers on the tier tabs)."""
    return review_queue()[1]
