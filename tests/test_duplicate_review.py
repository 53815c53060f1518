"""Review groups a person can trust: stars not chains, per-member choice, confirmation, undo."""

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from gallery.models import Image, Tag
from search.duplicates import duplicate_groups, star_groups, tier_counts
from search.duplicates.review import ReviewError, decision_keep, decision_not_duplicates, decision_undo
from search.models import DuplicatePair, NotDuplicate
from tests.factories import make_photo, make_photos

HTMX = {"HX-Request": "true"}
pytestmark = pytest.mark.django_db


# --- the grouping rule, on any graph -------------------------------------------------


@st.composite
def pair_graphs(draw):
    size = draw(st.integers(min_value=2, max_value=14))
    pairs = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, size - 1)), max_size=40))
    ranking = draw(st.permutations(list(range(size))))
    return [(a, b) for a, b in pairs if a != b], ranking


@hypothesis_settings(max_examples=300, deadline=None)
@given(pair_graphs())
def test_every_group_is_a_star_around_its_keeper(graph):
    pairs, ranking = graph
    linked = {frozenset(pair) for pair in pairs}
    groups = star_groups(pairs, ranking)
    seen: set[int] = set()
    for keeper, members in groups:
        assert members, "a group has at least one member besides its keeper"
        for member in members:
            assert frozenset((keeper, member)) in linked, "every member is directly paired with the keeper"
            assert ranking.index(keeper) < ranking.index(member), "the keeper is the best-ranked photo of its group"
        photos = [keeper, *members]
        assert not seen & set(photos), "no photo is in two groups"
        seen.update(photos)
    # Nothing is lost: a pair whose photos are both still free would have made a group.
    assert all(a in seen or b in seen for a, b in pairs)


def test_a_chain_never_groups_its_ends():
    # A~B, B~C, A and C unrelated; A is the best keeper: A keeps B, and C waits for the next round.
    a, b, c = 1, 2, 3
    assert star_groups([(a, b), (b, c)], [a, b, c]) == [(a, [b])]
    # B~C comes back once A~B is resolved (B trashed, or A~B marked not duplicates).
    assert star_groups([(b, c)], [a, b, c]) == [(b, [c])]


# --- groups from stored pairs --------------------------------------------------------


def pair(first: Image, second: Image, tier: str, similarity: float, hamming: int | None = None) -> None:
    a, b = sorted((first.pk, second.pk))
    DuplicatePair.objects.create(image_a_id=a, image_b_id=b, tier=tier, similarity=similarity, hamming=hamming)


@pytest.fixture
def star(db):
    """A keeper (most pixels) with an exact copy, a near-duplicate at 0.99, a similar shot at 0.955."""
    keeper = make_photo(name="keeper.jpg", width=4000, height=3000, byte_size=900_000)
    exact = make_photo(name="exact.jpg", width=4000, height=3000, byte_size=800_000)
    near = make_photo(name="near.jpg", width=2000, height=1500, byte_size=300_000)
    similar = make_photo(name="similar.jpg", width=1000, height=750, byte_size=100_000)
    pair(keeper, exact, "exact", 1.0, 0)
    pair(keeper, near, "near", 0.99, 4)
    pair(keeper, similar, "similar", 0.955)
    return keeper, exact, near, similar


def test_group_members_carry_their_own_relation_and_the_weakest_label(star):
    keeper, exact, near, similar = star
    (group,) = duplicate_groups()
    assert group.keeper == keeper and [m.image for m in group.members] == [exact, near, similar]
    assert [(m.tier, m.similarity) for m in group.members] == [("exact", 1.0), ("near", 0.99), ("similar", 0.955)]
    assert group.tier == "similar"  # the weakest member, never the strongest
    assert [m.preselected for m in group.members] == [True, True, False]
    assert "4 bits" in group.members[1].reason and group.keeper_reason == "same size in pixels, largest file"
    assert [g.tier for g in duplicate_groups(tier="exact")] == ["exact"]
    assert tier_counts() == {"exact": 1, "near": 1, "similar": 1}


def test_a_chain_in_the_library_never_puts_both_ends_in_one_group(db):
    a = make_photo(name="a.jpg", width=3000, height=2000)
    b = make_photo(name="b.jpg", width=2000, height=1500)
    c = make_photo(name="c.jpg", width=1000, height=800)
    pair(a, b, "near", 0.97, 20)
    pair(b, c, "near", 0.97, 20)
    groups = duplicate_groups()
    assert [(g.keeper.pk, [m.image.pk for m in g.members]) for g in groups] == [(a.pk, [b.pk])]


def test_keep_trashes_exactly_the_ticked_members_and_undo_brings_everything_back(star, editor):
    keeper, exact, near, similar = star
    exact.metadata.category = "harbour"
    exact.metadata.save()
    exact.metadata.tags.add(Tag.objects.create(name="boats"))
    decision = decision_keep(
        center_id=keeper.pk,
        member_ids=[exact.pk, near.pk, similar.pk],
        keeper_id=keeper.pk,
        trash_ids=[exact.pk, similar.pk],
        user=editor,
    )
    assert {p.pk for p in decision.trashed} == {exact.pk, similar.pk}
    assert set(Image.objects.trashed().values_list("pk", flat=True)) == {exact.pk, similar.pk}
    keeper.metadata.refresh_from_db()
    assert keeper.metadata.category == "harbour" and list(keeper.metadata.tags.values_list("name", flat=True)) == [
        "boats"
    ]
    # The unticked member stays, remembered as not a duplicate of the keeper: the group does not come back.
    assert list(NotDuplicate.objects.values_list("image_a_id", "image_b_id")) == [tuple(sorted((keeper.pk, near.pk)))]
    assert duplicate_groups() == []
    assert "Undone: 2 photos restored" in decision_undo(token=decision.undo_token)
    assert not Image.objects.trashed().exists() and not NotDuplicate.objects.exists()
    keeper.metadata.refresh_from_db()
    assert keeper.metadata.category == "" and not keeper.metadata.tags.exists()
    assert len(duplicate_groups()[0].members) == 3


def test_undo_keeps_later_edits(star, editor):
    keeper, exact, near, similar = star
    exact.metadata.location = "Bergen"
    exact.metadata.save()
    decision = decision_keep(
        center_id=keeper.pk, member_ids=[exact.pk], keeper_id=keeper.pk, trash_ids=[exact.pk], user=editor
    )
    keeper.metadata.refresh_from_db()
    keeper.metadata.location = "Oslo"  # someone corrected it meanwhile
    keeper.metadata.save()
    decision_undo(token=decision.undo_token)
    keeper.metadata.refresh_from_db()
    assert keeper.metadata.location == "Oslo"


def test_decisions_refuse_what_does_not_fit_the_group(star, editor):
    keeper, exact, near, similar = star
    stranger = make_photo(name="stranger.jpg")
    with pytest.raises(ReviewError, match="not in this group"):
        decision_keep(
            center_id=keeper.pk,
            member_ids=[exact.pk, stranger.pk],
            keeper_id=keeper.pk,
            trash_ids=[stranger.pk],
            user=editor,
        )
    with pytest.raises(ReviewError, match="also ticked"):
        decision_keep(
            center_id=keeper.pk, member_ids=[exact.pk], keeper_id=keeper.pk, trash_ids=[keeper.pk], user=editor
        )
    with pytest.raises(ReviewError, match="not in this group"):
        decision_keep(
            center_id=keeper.pk, member_ids=[exact.pk, 999999], keeper_id=keeper.pk, trash_ids=[], user=editor
        )
    from gallery.services import image_restore, image_trash

    image_trash(images=[similar])  # trashed elsewhere while the page was open
    with pytest.raises(ReviewError, match="no longer in the library"):
        decision_keep(
            center_id=keeper.pk, member_ids=[exact.pk, similar.pk], keeper_id=keeper.pk, trash_ids=[], user=editor
        )
    image_restore(images=[similar])
    with pytest.raises(ReviewError, match="not valid"):
        decision_undo(token="forged")
    assert not Image.objects.trashed().exists() and not NotDuplicate.objects.exists()


def test_keep_another_member_than_suggested(star, editor):
    keeper, exact, near, similar = star
    decision_keep(
        center_id=keeper.pk, member_ids=[exact.pk, near.pk], keeper_id=exact.pk, trash_ids=[keeper.pk], user=editor
    )
    assert list(Image.objects.trashed()) == [keeper]


def test_not_duplicates_is_linear_in_the_group(db, editor):
    center = make_photo(width=5000, height=4000)
    members = make_photos(300)
    DuplicatePair.objects.bulk_create(
        [
            DuplicatePair(
                image_a_id=min(center.pk, m.pk), image_b_id=max(center.pk, m.pk), tier="similar", similarity=0.96
            )
            for m in members
        ]
    )
    decision_not_duplicates(center_id=center.pk, member_ids=[m.pk for m in members], user=editor)
    assert NotDuplicate.objects.count() == 300  # one row per member, not 300 * 299 / 2
    assert duplicate_groups() == []


# --- the page --------------------------------------------------------------------------


def test_review_page_ticks_only_safe_members_and_states_the_rule(star, editor_client):
    keeper, exact, near, similar = star
    html = editor_client.get(reverse("search:duplicates")).content.decode()
    assert f'name="trash" value="{exact.pk}" data-bytes="800000" checked' in html
    assert f'name="trash" value="{near.pk}" data-bytes="300000" checked' in html
    assert f'name="trash" value="{similar.pk}" data-bytes="100000" >' in html
    assert "similarity 0.98 or more" in html and 'data-count-of="trash">2<' in html
    assert 'hx-confirm="Move the ticked photos to the trash?"' in html


def test_review_without_javascript_confirms_then_redirects_with_undo(star, editor):
    keeper, exact, near, similar = star
    client = Client()
    client.force_login(editor)
    data = {
        "action": "keep",
        "group": keeper.pk,
        "ids": [keeper.pk, exact.pk, near.pk, similar.pk],
        "keeper": keeper.pk,
        "trash": [exact.pk, near.pk],
    }
    asked = client.post(reverse("search:duplicates_resolve"), data)
    assert "Move 2 photos (1.0\xa0MB) to the trash?" in asked.content.decode()
    assert not Image.objects.trashed().exists()
    done = client.post(reverse("search:duplicates_resolve"), {**data, "confirmed": "1"})
    assert done.status_code == 302
    page = client.get(done["Location"]).content.decode()
    assert "moved 2 photos to the trash" in page and reverse("search:duplicates_undo") in page
    token = page.split('name="token" value="')[1].split('"')[0]
    client.post(reverse("search:duplicates_undo"), {"token": token})
    assert not Image.objects.trashed().exists()


def test_resolving_with_htmx_updates_the_header_counts(star, editor_client):
    keeper, exact, near, similar = star
    response = editor_client.post(
        reverse("search:duplicates_resolve"),
        {
            "action": "keep",
            "group": keeper.pk,
            "ids": [keeper.pk, exact.pk, near.pk, similar.pk],
            "keeper": keeper.pk,
            "trash": [exact.pk],
            "confirmed": "1",
        },
        headers=HTMX,
    )
    html = response.content.decode()
    assert '<span id="nav-trash-count" hx-swap-oob="true">1</span>' in html
    assert '<small id="duplicates-summary" hx-swap-oob="true">0 groups' in html
    refused = editor_client.post(
        reverse("search:duplicates_resolve"),
        {"action": "keep", "group": keeper.pk, "ids": [keeper.pk, 424242], "keeper": keeper.pk, "confirmed": "1"},
        headers=HTMX,
    )
    assert refused.status_code == 400 and refused["HX-Retarget"] == f"#group-{keeper.pk} .review-error"


def test_find_duplicates_says_why_each_pair_is_one(
    tmp_path, ingest, pixel_embedder, django_capture_on_commit_callbacks
):
    from search.python_api import find_duplicates
    from tests.photos import photo_image

    base = photo_image(7, size=(800, 600))
    (tmp_path / "in").mkdir()
    base.save(tmp_path / "in" / "a.jpg", quality=92)
    base.resize((400, 300)).save(tmp_path / "in" / "b.jpg", quality=70)
    base.save(tmp_path / "in" / "c.png")
    base.save(tmp_path / "in" / "d.png", compress_level=1)  # the same pixels as c.png in other bytes
    with django_capture_on_commit_callbacks(execute=True):
        ingest(tmp_path / "in")
    pairs = find_duplicates(similarity_threshold=0.999)
    assert {p["tier"] for p in pairs} == {"exact", "near"}
    exact = next(p for p in pairs if p["tier"] == "exact")
    assert exact["rule"] == "same decoded pixels"
    near = next(p for p in pairs if p["tier"] == "near")
    assert near["rule"].startswith("perceptual hash within") and near["hamming"] is not None
    assert [p["tier"] for p in find_duplicates(similarity_threshold=0.999, tiers=["exact"])] == ["exact"]
    with pytest.raises(ValueError, match="unknown tier"):
        find_duplicates(tiers=["twins"])


def test_the_scan_line_says_when_no_pair_it_found_waits_for_review(star, editor_client):
    from django.utils import timezone

    from search.models import DuplicatePair, DuplicateScan

    DuplicateScan.objects.create(
        status="done", finished_at=timezone.now(), pairs=3, seconds=0.4, similarity_threshold=0.95, hamming_threshold=10
    )
    waiting = editor_client.get("/duplicates/").content.decode()
    assert "3 pairs found in 0.4 s." in waiting and "none of them waiting" not in waiting
    assert "Show the results" not in waiting  # they are on the page already
    DuplicatePair.objects.all().delete()  # as if every group had been reviewed
    reviewed = editor_client.get("/duplicates/").content.decode()
    assert "3 pairs found in 0.4 s, none of them waiting for review." in reviewed
    assert "No duplicates waiting for review." in reviewed


def test_only_a_page_with_no_group_to_lose_reloads_when_its_scan_ends(star, editor_client, db):
    from django.utils import timezone

    from search.models import DuplicateScan

    shown = editor_client.get("/duplicates/").content.decode()
    assert 'name="show_when_done"' not in shown  # groups on the page: a finished scan offers its results instead
    scan = DuplicateScan.objects.create(
        status="done", finished_at=timezone.now(), pairs=3, seconds=0.4, similarity_threshold=0.95, hamming_threshold=10
    )
    status = reverse("search:duplicates_scan_status", args=[scan.pk])
    offered = editor_client.get(status, headers=HTMX)
    assert "HX-Refresh" not in offered and "Show the results" in offered.content.decode()
    assert editor_client.get(status, {"show_when_done": "1"}, headers=HTMX)["HX-Refresh"] == "true"
    DuplicatePair.objects.all().delete()
    empty = editor_client.get("/duplicates/").content.decode()
    assert 'name="show_when_done" value="1"' in empty
