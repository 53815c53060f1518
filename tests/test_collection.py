"""Export and import of the whole library: exact round trips, and every malformed input refused untouched."""

import base64
import gzip
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from gallery import collection
from gallery.collection import ImportRefused, export_collection, import_collection
from gallery.models import Album, Image, Metadata, Tag
from gallery.services import album_add, album_create
from search.models import IndexOutbox
from search.python_api import find_similar
from tests.photos import write_photo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def library(tmp_path, ingest):
    for i in range(4):
        write_photo(
            tmp_path / "in" / f"p{i}.jpg",
            i,
            make="Canon",
            model="EOS R5",
            taken=datetime(2023, 5, 1 + i, 12, 0),
            gps=(48.85, 2.35) if i == 0 else None,
        )
    write_photo(tmp_path / "in" / "p4.png", 4, fmt="PNG")
    ingest(tmp_path / "in")
    write_photo(tmp_path / "nas" / "far.jpg", 9)
    ingest(tmp_path / "nas", in_place=True)
    sea = Tag.objects.create(name="sea")
    for i, meta in enumerate(Metadata.objects.order_by("image__original_name")):
        meta.title = f'<b>Photo {i}</b> "quoted" é'
        meta.category = "travel" if i % 2 else "family"
        meta.location = "Paris"
        meta.extra = {**meta.extra, "note": i}
        meta.save()
        if i < 2:
            meta.tags.add(sea)
    paris = album_create(name="Paris 2023", description="Spring")
    album_add(album=paris, images=Image.objects.filter(original_name__in=["p1.jpg", "p2.jpg"]))
    album_add(album=album_create(name="Empty"), images=[])
    trashed = Image.objects.get(original_name="p3.jpg")
    trashed.trashed_at = datetime(2024, 2, 2, tzinfo=UTC)
    trashed.save()
    assert Image.objects.filter(embedding_state="done").count() == 6
    return tmp_path


def _document(path: Path) -> dict:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as bundle:
            document = json.loads(bundle.read(collection.DOCUMENT_NAME))
    else:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            document = json.load(handle)
    document.pop("exported_at")
    return document


def _search(query: str) -> list[tuple[str, float]]:
    return [(r["sha256"], round(r["similarity"], 5)) for r in find_similar(query_text=query, top_k=10)]


def _empty_instance(settings, tmp_path, name: str) -> None:
    """Point media and Chroma at fresh folders and delete every row: a new server."""
    from tests.conftest import _reset_backends

    settings.MEDIA_ROOT = tmp_path / name / "media"
    settings.IMGSIM_INDEX = {**settings.IMGSIM_INDEX, "OPTIONS": {"path": str(tmp_path / name / "chroma"), "url": None}}
    _reset_backends()
    Image.objects.all().delete()
    Tag.objects.all().delete()
    Album.objects.all().delete()
    IndexOutbox.objects.all().delete()
    _reset_backends()


def _no_model_calls(monkeypatch):
    from search.embeddings import get_embedder

    def refuse(*args, **kwargs):
        raise AssertionError("the model was called")

    monkeypatch.setattr(get_embedder(), "encode_pixels", refuse)


def _stored_files(settings) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_bundle_round_trip_is_exact_without_model_calls(library, settings, monkeypatch):
    before = _search("a photo")
    assert len(before) == 5  # the trashed one is not searchable
    bundle = library / "out" / "backup.zip"
    report = export_collection(bundle, with_files=True)
    assert report.count == 6 and report.files == 6 * 3  # the in-place original is bundled too
    first = _document(bundle)
    assert first["count"] == 6 and first["version"] == 2 and first["dimension"] == 32
    assert {album["name"]: album["description"] for album in first["albums"]} == {"Paris 2023": "Spring", "Empty": ""}
    assert all(not record["in_place"] for record in first["images"])  # a bundle stores every original

    _empty_instance(settings, library, "second")
    _no_model_calls(monkeypatch)
    result = import_collection(bundle)
    assert (result.added, result.vectors_imported, result.renditions_made, result.failed) == (6, 6, 0, [])
    again = library / "out" / "again.zip"
    export_collection(again, with_files=True)
    assert _document(again) == first  # albums, their members, descriptions and covers included
    assert _search("a photo") == before
    assert {r["filename"] for r in find_similar(query_text="a", filter_metadata={"album": "paris 2023"})} == {
        "p1.jpg",
        "p2.jpg",
    }
    restored = Image.objects.get(original_name="p3.jpg")
    assert restored.trashed_at == datetime(2024, 2, 2, tzinfo=UTC)
    assert all(
        Path(settings.MEDIA_ROOT, relpath).is_file()
        for image in Image.objects.all()
        for relpath in [image.file] + [f"renditions/{image.sha256[:2]}/{image.sha256[2:]}.thumb.webp"]
    )
    from search.reconcile import reconcile

    assert reconcile().clean


def test_json_round_trip_keeps_in_place_references(library, settings, monkeypatch):
    out = library / "out" / "library.json.gz"
    call_command("export_collection", str(out), "--no-progress")
    first = _document(out)
    far = next(r for r in first["images"] if r["original_name"] == "far.jpg")
    assert far["in_place"] and far["file"] == str(library / "nas" / "far.jpg")
    paris = next(r for r in first["images"] if r["metadata"]["latitude"] is not None)
    assert paris["metadata"]["camera_model"] == "EOS R5" and abs(paris["metadata"]["latitude"] - 48.85) < 1e-6
    vector = base64.b64decode(paris["embedding"]["vector"])
    assert len(vector) == 32 * 4

    before = _search("sea")
    # The same data dir under a new database: originals and renditions are there already.
    Image.objects.all().delete()
    Tag.objects.all().delete()
    Album.objects.all().delete()
    _no_model_calls(monkeypatch)
    call_command("import_collection", str(out), "--no-progress")
    assert Image.objects.count() == 6
    again = library / "out" / "again.json"
    export_collection(again)
    assert _document(again) == first
    assert _search("sea") == before


def test_import_is_a_merge_and_can_tag_the_collection(library, settings):
    out = library / "out" / "library.json"
    export_collection(out)
    result = import_collection(out)
    assert (result.added, result.known) == (0, 6)
    Image.objects.filter(original_name__in=["p0.jpg", "p1.jpg"]).delete()
    result = import_collection(out, collection="Old Server")
    assert (result.added, result.known) == (2, 4)
    assert sorted(Tag.objects.get(name="old server").photos.values_list("image__original_name", flat=True)) == [
        "p0.jpg",
        "p1.jpg",
    ]
    assert Image.objects.get(original_name="p0.jpg").metadata.tags.filter(name="sea").exists()


def test_the_digests_an_import_holds_answer_like_a_set_across_merges(monkeypatch):
    """Import keeps every SHA-256 of a document (and of the library) in Digests, a sorted array
    merged from a small set: membership must be exact on both sides of a merge, for digests that
    end in zero bytes (which numpy's fixed-width strings hand back shortened) and their neighbours."""
    from gallery.collection import digests

    monkeypatch.setattr(digests, "MERGE_AT", 4)
    rng = np.random.default_rng(3)
    held = [rng.bytes(32) for _ in range(9)] + [b"\x07" * 31 + b"\x00", b"\x07" * 30 + b"\x00\x00"]
    absent = [rng.bytes(32) for _ in range(50)] + [b"\x07" * 31 + b"\x01", b"\x07" * 30 + b"\x00\x01"]
    found = digests.Digests([held[0].hex(), "not a sha256", held[1].hex().upper()])
    for digest in held[2:]:
        assert digest not in found
        found.add(digest)
    assert len(found) == len(held) and len(found._sorted) == 8  # two merges, three still recent
    assert all(digest in found for digest in held)
    assert not any(digest in found for digest in absent)


def test_other_model_means_embedding_again(library, settings):
    bundle = library / "out" / "b.zip"
    export_collection(bundle, with_files=True)
    with zipfile.ZipFile(bundle) as source:
        document = json.loads(source.read(collection.DOCUMENT_NAME))
        members = {name: source.read(name) for name in source.namelist() if name != collection.DOCUMENT_NAME}
    document["model"] = "other/model"
    for record in document["images"]:
        record["embedding"]["model"] = "other/model"
    other = library / "out" / "other.zip"
    _write_zip(other, document, members)
    _empty_instance(settings, library, "second")
    result = import_collection(other)
    assert result.added == 6 and result.vectors_imported == 0
    # Embedded here, from the bundled files (the trashed photo waits until it is restored).
    assert Image.objects.live().filter(embedding_state="done").count() == 5
    assert len(_search("sea")) == 5


def test_missing_renditions_are_made_from_the_original(library, settings):
    out = library / "out" / "library.json"
    export_collection(out)
    Image.objects.all().delete()
    for path in Path(settings.MEDIA_ROOT, "renditions").rglob("*.webp"):
        path.unlink()
    result = import_collection(out)
    assert result.added == 6 and result.renditions_made == 6
    assert len(list(Path(settings.MEDIA_ROOT, "renditions").rglob("*.webp"))) == 6


def test_staff_download_from_the_stats_page(library, client, editor, viewer):
    client.force_login(viewer)
    assert reverse("gallery:export") not in client.get(reverse("gallery:stats")).content.decode()
    assert client.get(reverse("gallery:export")).status_code == 403
    client.force_login(editor)  # staff
    assert reverse("gallery:export") in client.get(reverse("gallery:stats")).content.decode()
    response = client.get(reverse("gallery:export"))
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    document = json.loads(gzip.decompress(b"".join(response.streaming_content)))
    assert document["count"] == 6 and {r["original_name"] for r in document["images"]} >= {"p0.jpg", "far.jpg"}


# --- malformed inputs: each refused with one clear error, nothing changed -------------------


def _write_zip(path: Path, document: dict | bytes, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        bundle.writestr(collection.DOCUMENT_NAME, body)
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


@pytest.fixture
def exported(library):
    bundle = library / "out" / "good.zip"
    export_collection(bundle, with_files=True)
    with zipfile.ZipFile(bundle) as source:
        document = json.loads(source.read(collection.DOCUMENT_NAME))
        members = {name: source.read(name) for name in source.namelist() if name != collection.DOCUMENT_NAME}
    return document, members


def _break(case: str, document: dict, members: dict, folder: Path) -> tuple[Path, str]:
    first = document["images"][0]
    if case == "not json":
        (folder / "bad.json").write_text("this is a text file, not JSON")
        return folder / "bad.json", "not valid JSON"
    if case == "truncated":
        text = json.dumps(document)
        (folder / "bad.json").write_text(text[: len(text) // 2])
        return folder / "bad.json", "not valid JSON"
    if case == "wrong format":
        document["format"] = "something-else"
        return _write_zip(folder / "bad.zip", document, members), "not an imgsim collection"
    if case == "wrong version":
        document["version"] = 3
        return _write_zip(folder / "bad.zip", document, members), "format version 3"
    if case == "bad album":
        document["albums"].append({"name": " padded ", "cover": "not-a-sha"})
        return _write_zip(folder / "bad.zip", document, members), "album 3"
    if case == "bad album name in a record":
        first["albums"] = ["ok", "x" * 121]
        return _write_zip(folder / "bad.zip", document, members), "albums.1"
    if case == "missing field":
        del first["width"]
        return _write_zip(folder / "bad.zip", document, members), "missing field 'width'"
    if case == "dimension mismatch":
        first["embedding"]["vector"] = base64.b64encode(np.eye(1, 16, dtype="<f4").tobytes()).decode()
        return _write_zip(folder / "bad.zip", document, members), "dimension 16"
    if case == "duplicate ids":
        document["images"].append(dict(first))
        return _write_zip(folder / "bad.zip", document, members), "duplicate id"
    if case == "path escape in document":
        first["file"] = "../../../etc/passwd"
        return _write_zip(folder / "bad.zip", document, members), "tries to leave the data dir"
    if case == "path escape in zip":
        members["../../evil.sh"] = b"#!/bin/sh\n"
        return _write_zip(folder / "bad.zip", document, members), "tries to leave the data dir"
    if case == "stray zip entry":
        members["originals/zz/notaphoto.jpg"] = b"x"
        return _write_zip(folder / "bad.zip", document, members), "not a file of any photo"
    if case == "zip bomb":
        members[document["images"][0]["file"]] = b"\0" * 50_000_000
        return _write_zip(folder / "bad.zip", document, members), "compression bomb"
    if case == "gzip bomb":
        text = json.dumps(document)
        body = text[:-1] + " " * 40_000_000 + "}"
        (folder / "bad.json.gz").write_bytes(gzip.compress(body.encode(), compresslevel=1))
        return folder / "bad.json.gz", "compression bomb"
    if case == "original missing":
        del members[first["file"]]
        return _write_zip(folder / "bad.zip", document, members), "original not found"
    if case == "bad tags":
        first["metadata"]["tags"] = ["Not Lowercase", 3]
        return _write_zip(folder / "bad.zip", document, members), "metadata.tags"
    if case == "tampered original":  # one bad file refuses the whole import, before any change
        members[first["file"]] = members[first["file"]][:-10] + b"0123456789"
        return _write_zip(folder / "bad.zip", document, members), "does not match its SHA-256"
    if case == "tampered in-place original":
        other = write_photo(folder / "elsewhere.jpg", 999)
        first.update(in_place=True, file=str(other))
        return _write_zip(folder / "bad.zip", document, members), "does not match its SHA-256"
    if case == "not a unit vector":
        first["embedding"]["vector"] = base64.b64encode((np.ones(32, dtype="<f4") * 1e30).tobytes()).decode()
        return _write_zip(folder / "bad.zip", document, members), "not a unit vector"
    if case == "deeply nested extra":
        first["metadata"]["extra"] = {"deep": "here"}
        text = json.dumps(document).replace('{"deep": "here"}', '{"a": ' * 20000 + "1" + "}" * 20000, 1)
        return _write_zip(folder / "bad.zip", text.encode(), members), "nested deeper than 16 levels"
    if case == "NUL in text":  # SQLite would store it, PostgreSQL refuse it half-way: refused for both
        first["metadata"]["title"] = "before\x00after"
        return _write_zip(folder / "bad.zip", document, members), "NUL character"
    if case == "nan vector":
        first["embedding"]["vector"] = base64.b64encode(b"\0\0\xc0\x7f" * 32).decode()
        return _write_zip(folder / "bad.zip", document, members), "NaN"
    raise AssertionError(case)


CASES = [
    "not json",
    "truncated",
    "wrong format",
    "wrong version",
    "bad album",
    "bad album name in a record",
    "missing field",
    "dimension mismatch",
    "duplicate ids",
    "path escape in document",
    "path escape in zip",
    "stray zip entry",
    "zip bomb",
    "gzip bomb",
    "original missing",
    "bad tags",
    "nan vector",
    "tampered original",
    "tampered in-place original",
    "not a unit vector",
    "deeply nested extra",
    "NUL in text",
]


def test_a_version_1_document_without_albums_is_still_read(exported, library, settings):
    document, members = exported
    document["version"] = 1
    del document["albums"]
    for record in document["images"]:
        del record["albums"]
    path = _write_zip(library / "v1.zip", document, members)
    _empty_instance(settings, library, "second")
    report = import_collection(path)
    assert report.added == 6 and report.failed == [] and not Album.objects.exists()


@pytest.mark.parametrize("case", CASES)
def test_malformed_input_is_refused_and_changes_nothing(case, exported, library, settings):
    document, members = exported
    folder = library / "bad"
    folder.mkdir()
    path, message = _break(case, document, members, folder)
    _empty_instance(settings, library, "second")
    with pytest.raises(ImportRefused, match=message):
        import_collection(path)
    assert Image.objects.count() == 0 and Tag.objects.count() == 0 and Album.objects.count() == 0
    assert _stored_files(settings) == []


def test_command_reports_a_refusal_as_an_error(exported, library, settings):
    document, members = exported
    document["version"] = 99
    path = _write_zip(library / "v99.zip", document, members)
    with pytest.raises(CommandError, match="format version 99"):
        call_command("import_collection", str(path), "--no-progress")


def test_commands_with_progress_bars(library, settings, capsys):
    """The progress bars themselves (the other tests pass --no-progress)."""
    out = library / "out" / "library.json"
    call_command("export_collection", str(out))
    Image.objects.filter(original_name="p0.jpg").delete()
    call_command("import_collection", str(out))
    call_command("reindex")
    captured = capsys.readouterr()
    assert "Exported 6 photos" in captured.out and "1 added" in captured.out and "Indexed 5 vectors" in captured.out
    assert "photo" in captured.err and "vec" in captured.err
