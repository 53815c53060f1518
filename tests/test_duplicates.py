import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image as PILImage
from PIL import ImageEnhance

from gallery import storage
from gallery.models import Image, Tag
from gallery.services import image_trash
from search.duplicates import choose_keeper, duplicate_groups, start_scan
from search.embeddings import get_embedder, model_name
from search.index import get_index
from search.models import DuplicatePair, NotDuplicate
from tests.photos import exif_bytes, photo_image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def duplicates_embedder(pixel_embedder, settings):
    settings.IMGSIM_DUPLICATE_CROP_CONFIRM = 0.90  # the test embedder scores 5% crops >= 0.92
    get_embedder.cache_clear()


def save(image: PILImage.Image, path, quality=88, **exif):
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": quality}
    if exif:
        options["exif"] = exif_bytes(**exif)
    image.save(path, "JPEG", **options)
    return path


def family(folder, seed: int) -> dict[str, str]:
    """An original and its near-duplicates: resized, re-encoded, cropped 5%, brightened."""
    base = photo_image(seed, size=(800, 600))
    names = {}
    names["original"] = save(base, folder / f"f{seed}_original.jpg", quality=92).name
    names["resized"] = save(base.resize((400, 300)), folder / f"f{seed}_resized.jpg").name
    for quality in (30, 60, 90):
        names[f"q{quality}"] = save(base, folder / f"f{seed}_q{quality}.jpg", quality=quality).name
    names["crop"] = save(base.crop((20, 15, 780, 585)), folder / f"f{seed}_crop.jpg").name
    names["bright"] = save(ImageEnhance.Brightness(base).enhance(1.15), folder / f"f{seed}_bright.jpg").name
    return names


@pytest.fixture
def library(tmp_path, ingest):
    folder = tmp_path / "in"
    families = [family(folder, seed) for seed in (1, 2, 3)]
    for seed in range(100, 112):  # unrelated photos
        save(photo_image(seed, size=(640, 480)), folder / f"other_{seed}.jpg")
    # The same pixels with different EXIF: different bytes, identical picture.
    base = photo_image(50, size=(640, 480))
    save(base, folder / "exact_a.jpg", quality=90, make="Canon")
    save(base, folder / "exact_b.jpg", quality=90, make="Nikon", model="Z6")
    report = ingest(folder)
    assert report.added == 3 * 7 + 12 + 2
    return families


def names_in(group) -> set[str]:
    return {group.keeper.original_name} | {member.image.original_name for member in group.members}


def group_names(groups) -> list[set[str]]:
    return [names_in(group) for group in groups]


def decide(client, group, *, action="keep", trash=None, keeper=None, **extra):
    """Post a review decision the way the page's form does (HTMX, confirmed)."""
    ids = [group.keeper.pk] + [m.image.pk for m in group.members]
    data = {
        "action": action,
        "group": group.keeper.pk,
        "ids": ids,
        "keeper": keeper or group.keeper.pk,
        "trash": [m.image.pk for m in group.members] if trash is None else trash,
        "confirmed": "1",
        **extra,
    }
    return client.post(reverse("search:duplicates_resolve"), data, HTTP_HX_REQUEST="true")


def test_families_exact_copies_and_strangers(library):
    scan = start_scan()
    assert scan.status == "done" and scan.pairs > 0
    groups = duplicate_groups()
    names = group_names(groups)
    for members in library:
        assert set(members.values()) in names, f"family {members['original']} not grouped as one"
    assert {"exact_a.jpg", "exact_b.jpg"} in names
    exact = next(g for g in groups if names_in(g) == {"exact_a.jpg", "exact_b.jpg"})
    assert exact.tier == "exact"
    for group in groups:
        assert not any(name.startswith("other_") for name in names_in(group))
    family_group = next(g for g in groups if "f1_original.jpg" in names_in(g))
    assert family_group.tier == "near"
    assert family_group.keeper.original_name in {"f1_original.jpg", "f1_q90.jpg", "f1_crop.jpg", "f1_bright.jpg"}
    assert family_group.keeper.width == 800 or family_group.keeper.original_name == "f1_crop.jpg"
    assert "pixels" in family_group.keeper_reason or "file" in family_group.keeper_reason
    assert groups == sorted(groups, key=lambda g: -g.bytes_to_free)


def test_keeper_rules():
    def fake(pk, width, height, size):
        return Image(pk=pk, width=width, height=height, byte_size=size, sha256="0" * 64)

    big, small = fake(1, 800, 600, 100), fake(2, 400, 300, 500)
    assert choose_keeper([small, big]) == (big, "most pixels (800×600)")
    heavy = fake(3, 800, 600, 900)
    assert choose_keeper([big, heavy])[1] == "same size in pixels, largest file"


def test_decisions_persist_across_rescans_and_keep_merges_metadata(library, editor_client):
    start_scan()
    group = next(g for g in duplicate_groups() if "f2_original.jpg" in names_in(g))
    keeper = group.keeper
    donor = group.members[0].image
    donor.metadata.category = "harbour"
    donor.metadata.location = "Bergen"
    donor.metadata.save()
    donor.metadata.tags.add(Tag.objects.create(name="boats"))
    response = decide(editor_client, group)
    assert response.status_code == 200 and "moved 6 photos to the trash" in response.content.decode()
    keeper.metadata.refresh_from_db()
    assert keeper.metadata.category == "harbour" and keeper.metadata.location == "Bergen"
    assert list(keeper.metadata.tags.values_list("name", flat=True)) == ["boats"]
    trashed = Image.objects.trashed()
    assert trashed.count() == len(group.members)
    in_index = {int(pk) for pk in get_index().ids(model_name())}
    assert not in_index & set(trashed.values_list("pk", flat=True))  # trashed photos leave search

    other = next(g for g in duplicate_groups() if "f3_original.jpg" in names_in(g))
    decide(editor_client, other, action="not_duplicates")
    assert NotDuplicate.objects.count() == len(other.members)  # keeper ~ each member: linear, not all pairs
    start_scan()  # a full rescan: the decisions hold
    names = group_names(duplicate_groups())
    assert not any("f2_original.jpg" in n or "f3_original.jpg" in n for n in names)
    assert set(library[0].values()) in names


def test_trash_restore_and_purge_keep_everything_consistent(library, editor_client):
    from gallery.services import image_trash, trash_purge

    victim = Image.objects.get(original_name="other_100.jpg")
    files = storage.image_files(victim)
    image_trash(images=[victim])
    assert victim.pk not in {int(pk) for pk in get_index().ids(model_name())}
    restored = editor_client.post(reverse("gallery:trash_restore"), {"ids": [victim.pk]})
    assert restored.status_code == 302 and restored["Location"].startswith(reverse("gallery:trash"))
    assert victim.pk in {int(pk) for pk in get_index().ids(model_name())}
    image_trash(images=[victim])
    assert trash_purge(older_than_days=1) == 0  # not expired yet
    page = editor_client.get(reverse("gallery:trash"))
    assert "other_100.jpg" in page.content.decode()
    call_command("empty_trash", "--days", "0")
    assert not Image.objects.filter(pk=victim.pk).exists()
    assert not any(path.exists() for path in files)
    assert victim.pk not in {int(pk) for pk in get_index().ids(model_name())}


def test_incremental_scan_compares_only_new_photos(library, tmp_path, ingest):
    start_scan()
    before = DuplicatePair.objects.count()
    base = photo_image(1, size=(800, 600))
    save(base.resize((640, 480)), tmp_path / "new" / "f1_again.jpg")
    ingest(tmp_path / "new")
    scan = start_scan(incremental=True)
    assert scan.status == "done" and scan.pairs >= 1
    assert DuplicatePair.objects.count() > before
    names = group_names(duplicate_groups())
    assert any("f1_again.jpg" in n and "f1_original.jpg" in n for n in names)


def test_find_duplicates_api_and_command(library, capsys):
    from search.python_api import find_duplicates

    pairs = find_duplicates(similarity_threshold=0.95)
    assert pairs and {"image1_filename", "image2_filename", "similarity", "tier"} <= set(pairs[0])
    assert any({p["image1_filename"], p["image2_filename"]} == {"exact_a.jpg", "exact_b.jpg"} for p in pairs)
    call_command("find_duplicates", "--json", "--tier", "exact")
    printed = json.loads(capsys.readouterr().out)
    assert [p["tier"] for p in printed] == ["exact"] * len(printed) and len(printed) == 1
    call_command("find_duplicates", "--threshold", "0.99")
    assert "review them at /duplicates/" in capsys.readouterr().out


def test_pages_and_permissions(library, editor, viewer):
    from django.test import Client

    editor_client, viewer_client = Client(), Client()
    editor_client.force_login(editor)
    viewer_client.force_login(viewer)
    start_scan()
    page = editor_client.get(reverse("search:duplicates"))
    html = page.content.decode()
    assert page.status_code == 200 and "near-duplicate" in html and "exact copy" in html and "Scan now" in html
    filtered = editor_client.get(reverse("search:duplicates"), {"tier": "exact"}).content.decode()
    assert "exact_a.jpg" in filtered and "f1_original.jpg" not in filtered
    started = editor_client.post(reverse("search:duplicates_scan"), HTTP_HX_REQUEST="true")
    assert started.status_code == 200 and 'id="scan-status"' in started.content.decode()
    import time

    from search.models import DuplicateScan

    deadline = time.monotonic() + 30  # the scan runs in a background thread; let it finish
    while DuplicateScan.objects.filter(status="running").exists() and time.monotonic() < deadline:
        polled = editor_client.get(
            reverse("search:duplicates_scan_status", args=[DuplicateScan.objects.first().pk]), HTTP_HX_REQUEST="true"
        )
        assert polled.status_code == 200
        time.sleep(0.2)
    assert DuplicateScan.objects.first().status == "done"
    for url in (reverse("search:duplicates"), reverse("gallery:trash")):
        assert viewer_client.get(url).status_code == 403
    for url in (
        reverse("search:duplicates_resolve"),
        reverse("search:duplicates_scan"),
        reverse("gallery:trash_restore"),
        reverse("gallery:trash_delete"),
        reverse("search:duplicates_undo"),
    ):
        assert viewer_client.post(url).status_code == 403
    bad = editor_client.post(
        reverse("search:duplicates_resolve"), {"action": "keep", "ids": ["1"]}, HTTP_HX_REQUEST="true"
    )
    assert bad.status_code == 400


@pytest.mark.parametrize("plan", ["exact", "clustered"])
def test_a_stopped_scan_keeps_a_checkpoint_and_goes_on_from_it(plan, library, settings, monkeypatch):
    """A worker asked to stop ends the scan between blocks (or clusters); the next run finishes it
    with the same pairs."""
    from search import stopping
    from search.duplicates import find_pairs, run_scan
    from search.models import DuplicateScan

    settings.IMGSIM_DUPLICATE_BLOCK = 4
    settings.IMGSIM_DUPLICATE_EXACT_PAIRS = 0 if plan == "clustered" else 10**10
    settings.IMGSIM_DUPLICATE_PROBES = 30  # a handful of photos: every cluster, so the same pairs
    first = start_scan()
    expected = {(p.a, p.b, p.tier) for p in find_pairs()}
    assert expected and len(expected) == first.pairs
    blocks = iter(range(1000))
    monkeypatch.setattr(stopping, "stop_requested", lambda: next(blocks) >= 2)  # stop after the third block
    scan = DuplicateScan.objects.create(similarity_threshold=0.95, hamming_threshold=10)
    run_scan(scan)
    scan.refresh_from_db()
    assert scan.status == "running" and scan.checkpoint["next_cluster" if plan == "clustered" else "next_id"] > 0
    assert 0 < scan.progress < 0.95
    assert DuplicatePair.objects.count() == first.pairs  # the previous scan's pairs serve meanwhile

    # A photo trashed while the scan waits leaves its pairs out; positions shifted, ids did not.
    gone = Image.objects.get(original_name="f3_resized.jpg")
    image_trash(images=[gone])
    monkeypatch.setattr(stopping, "stop_requested", lambda: False)
    run_scan(scan)
    scan.refresh_from_db()
    assert scan.status == "done" and scan.checkpoint is None
    got = set(DuplicatePair.objects.values_list("image_a_id", "image_b_id", "tier"))
    assert got == {pair for pair in expected if gone.pk not in pair[:2]}
    assert len(got) < len(expected)
