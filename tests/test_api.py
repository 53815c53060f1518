"""The Python API (search.python_api) and the brief's standalone ChromaDBBackend."""

import os
from pathlib import Path

import numpy as np
import pytest

from gallery.models import Image
from gallery.vectors import load, load_one
from search.embeddings import get_embedder
from search.errors import InvalidFilter, InvalidQuery
from search.python_api import add_image, add_images_from_directory, find_similar
from search.standalone import ChromaDBBackend
from tests.photos import photo_bytes, write_library, write_photo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def library(tmp_path):
    folder = tmp_path / "photos"
    write_library(folder, 8)
    assert add_images_from_directory(folder) == 8
    assert add_images_from_directory(folder) == 0  # known photos are skipped
    return folder


def test_find_similar_by_text_image_path_id_and_embedding(library, tmp_path):
    by_text = find_similar(query_text="cat photo", top_k=5)
    assert len(by_text) == 5
    assert {"filename", "path", "similarity", "metadata"} <= set(by_text[0])
    assert [r["similarity"] for r in by_text] == sorted((r["similarity"] for r in by_text), reverse=True)

    query_file = library / "photo_0003.jpg"
    by_path = find_similar(query_image_path=query_file, top_k=3)
    assert by_path[0]["filename"] == "photo_0003.jpg"
    assert by_path[0]["similarity"] > 0.999

    image = Image.objects.get(original_name="photo_0003.jpg")
    by_id = find_similar(query_image_id=image.pk, top_k=20)
    assert image.pk not in [r["id"] for r in by_id]  # "more like this" leaves the photo itself out
    assert len(by_id) == 7

    vector = load_one(image.pk)
    by_embedding = find_similar(query_embedding=vector.tolist(), top_k=1)
    assert by_embedding[0]["id"] == image.pk
    assert by_path[1:3] == [r for r in find_similar(query_image_path=query_file, top_k=3)][1:3]


def test_each_result_carries_its_own_tags_sorted_from_a_fixed_number_of_queries(library, django_assert_max_num_queries):
    from gallery.services import metadata_update

    tagged, other = Image.objects.order_by("pk")[:2]
    metadata_update(image=tagged, fields={}, tags=["sea", "Boats", "harbour"])
    metadata_update(image=other, fields={}, tags=["zoo"])
    vector = load_one(tagged.pk).tolist()
    find_similar(query_embedding=vector, top_k=2)  # the search's own reads settle (generation, columns)
    with django_assert_max_num_queries(6):
        results = find_similar(query_embedding=vector, top_k=8)
    tags = {result["id"]: result["metadata"]["tags"] for result in results}
    assert len(tags) == 8 and tags[tagged.pk] == ["boats", "harbour", "sea"] and tags[other.pk] == ["zoo"]
    assert all(names == [] for pk, names in tags.items() if pk not in (tagged.pk, other.pk))


def test_negative_text_moves_results_away_from_it(library):
    plain = find_similar(query_text="beach", top_k=8)
    without = find_similar(query_text="beach", exclude_text="people", top_k=8)
    people = get_embedder().encode_texts(["people"])[0]
    vectors = load(Image.objects.values_list("pk", flat=True))

    def mean_people_score(results):
        return float(np.mean([vectors[r["id"]] @ people for r in results[:3]]))

    assert [r["id"] for r in plain] != [r["id"] for r in without]
    assert mean_people_score(without) <= mean_people_score(plain)


def test_threshold_drops_weak_results(library):
    everything = find_similar(query_text="snow", top_k=8)
    threshold = everything[3]["similarity"]
    assert [r["id"] for r in find_similar(query_text="snow", top_k=8, threshold=threshold)] == [
        r["id"] for r in everything[:4]
    ]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({}, "exactly one"),
        ({"query_text": "a", "query_image_id": 1}, "exactly one"),
        ({"query_image_id": 999999}, "no photo with id"),
        ({"query_embedding": [1.0, 2.0]}, "has 2 values"),
        ({"query_embedding": [0.0] * 32}, "empty or not finite"),
        ({"query_text": "x", "top_k": 0}, "top_k"),
        ({"query_text": "x", "threshold": 2}, "threshold"),
        ({"query_image": b"not an image"}, "cannot be used"),
    ],
)
def test_bad_queries_get_clear_errors(library, kwargs, words):
    with pytest.raises(InvalidQuery) as error:
        find_similar(**kwargs)
    assert words in str(error.value)


def test_bad_filter_is_an_invalid_filter(library):
    with pytest.raises(InvalidFilter):
        find_similar(query_text="x", filter_metadata={"colour": "red"})


def test_add_image_with_metadata_and_precomputed_embedding(tmp_path, library):
    path = write_photo(tmp_path / "new" / "harbour.png", 77, fmt="PNG")
    vector = np.zeros(32, dtype=np.float32)
    vector[3] = 2.0
    result = add_image(
        path,
        embedding=vector,
        metadata={"category": "travel", "tags": ["Boats", "sea"], "location": "Bergen", "rating": 5},
    )
    assert result["metadata"]["category"] == "travel"
    assert result["metadata"]["tags"] == ["boats", "sea"]
    image = Image.objects.get(pk=result["id"])
    assert image.metadata.extra["rating"] == 5
    assert np.allclose(load_one(image.pk), vector / 2)
    top = find_similar(query_embedding=vector, top_k=1, filter_metadata={"category": "travel"})
    assert top[0]["id"] == image.pk and top[0]["similarity"] > 0.999
    with pytest.raises(InvalidQuery, match="does not exist"):
        add_image(tmp_path / "missing.jpg")
    (tmp_path / "notes.jpg").write_text("hello")
    with pytest.raises(InvalidQuery, match="looks like text"):
        add_image(tmp_path / "notes.jpg")


def test_standalone_backend_follows_the_brief(tmp_path):
    folder = tmp_path / "images"
    write_library(folder, 6)
    (folder / "notes.txt").write_text("not an image")
    backend = ChromaDBBackend()  # in memory by default
    assert backend.add_images_from_directory(folder, max_images=100) == 6
    extra = write_photo(tmp_path / "landscape.jpg", 99)
    backend.add_image(extra, metadata={"category": "landscape", "camera": "Canon EOS R5", "tags": ["mountain", "snow"]})

    results = backend.find_similar(query_text="cat photo", top_k=5, threshold=-1)
    assert len(results) == 5 and all(set(r) >= {"filename", "path", "similarity"} for r in results)
    filtered = backend.find_similar(query_text="mountain landscape", filter_metadata={"category": "landscape"})
    assert [r["filename"] for r in filtered] == ["landscape.jpg"]
    tagged = backend.find_similar(query_image_path=extra, filter_metadata={"tags": {"$in": ["snow"]}})
    assert tagged[0]["similarity"] > 0.999
    with pytest.raises(InvalidFilter):
        backend.find_similar(query_text="x", filter_metadata={"category": {"$regex": "x"}})

    stats = backend.get_stats()
    assert stats["total_images"] == 7
    assert stats["avg_width"] == round((6 * 480 + 640) / 7, 1) and stats["avg_height"] == round((6 * 360 + 480) / 7, 1)
    assert stats["embedding_model"] == get_embedder().model_name

    (folder / "copy.jpg").write_bytes(photo_bytes(2, quality=60))  # photo_0002 re-encoded
    backend.add_image(folder / "copy.jpg")
    duplicates = backend.find_duplicates(similarity_threshold=0.95)
    assert {"photo_0002.jpg", "copy.jpg"} in [{d["image1_filename"], d["image2_filename"]} for d in duplicates]

    exported = tmp_path / "backup.json.gz"
    assert backend.export_collection(exported) == 8
    persisted = ChromaDBBackend(collection_name="restored", persist_directory=tmp_path / "db")
    assert persisted.import_collection(exported) == 8
    assert [r["id"] for r in persisted.find_similar(query_text="cat photo", top_k=5, threshold=-1)] == [
        r["id"] for r in results
    ]


@pytest.mark.slow
def test_the_briefs_example_script_runs(tmp_path, tiny_model):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    write_library(tmp_path / "photos", 4)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"IMGSIM_DATA_DIR": str(tmp_path / "data"), "IMGSIM_MODEL": tiny_model, "HF_HUB_OFFLINE": "1"})
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "chromadb_example.py"),
            str(tmp_path / "photos"),
            "cat photo",
            "--top-k",
            "3",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Added 4 images" in result.stdout and "Total images: 4" in result.stdout
    import re

    assert len(re.findall(r"^photo_\d+\.jpg: -?\d\.\d{3}$", result.stdout, flags=re.M)) == 3
    assert (tmp_path / "my_vector_db").is_dir()


def test_the_toolkit_takes_a_file_name_that_is_not_utf8(tmp_path):
    write_photo(Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.jpg")), 3)
    backend = ChromaDBBackend()
    assert backend.add_images_from_directory(tmp_path) == 1
    [found] = backend.find_similar(query_text="a photo", threshold=-1)
    assert (found["filename"], found["path"]) == ("caf\\xe9.jpg", f"{tmp_path}/caf\\xe9.jpg")


def test_two_in_memory_backends_keep_their_own_images(tmp_path):
    write_library(tmp_path / "a", 3)
    write_library(tmp_path / "b", 2, start=10)
    first, second = ChromaDBBackend(), ChromaDBBackend()
    assert first.add_images_from_directory(tmp_path / "a") == 3
    assert second.add_images_from_directory(tmp_path / "b") == 2
    assert (first.get_stats()["total_images"], second.get_stats()["total_images"]) == (3, 2)


def test_the_briefs_batch_loop_advances_through_a_folder(tmp_path):
    """add_images_from_directory(max_images=5) again and again: each call adds the next five."""
    write_library(tmp_path / "photos", 12)
    backend = ChromaDBBackend()
    added = [backend.add_images_from_directory(tmp_path / "photos", max_images=5) for _ in range(4)]
    assert added == [5, 5, 2, 0] and backend.get_stats()["total_images"] == 12


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda b, tmp: ChromaDBBackend(collection_name="ab"), "is not a name Chroma accepts"),
        (lambda b, tmp: ChromaDBBackend(collection_name="my photos"), "is not a name Chroma accepts"),
        (lambda b, tmp: b.add_image(tmp / "missing.jpg"), "no such file"),
        (lambda b, tmp: b.add_image(tmp / "text.jpg"), "is not an image"),
        (lambda b, tmp: b.import_collection(tmp / "text.jpg"), "is not an export_collection file"),
        (lambda b, tmp: b.import_collection(tmp / "missing.json"), "no such file"),
        (lambda b, tmp: b.find_similar(query_embedding=[0.1, 0.2, 0.3]), "has 3 values"),
        (lambda b, tmp: b.find_similar(query_text="x", top_k=0), "top_k must be"),
        (lambda b, tmp: b.find_similar(query_text="x", top_k=5000), "top_k must be"),
        (lambda b, tmp: b.find_similar(query_text="x", threshold=1.5), "threshold must be"),
        (lambda b, tmp: b.find_similar(query_image_path=tmp / "missing.jpg"), "no such file"),
        (lambda b, tmp: b.find_duplicates(similarity_threshold=2), "similarity_threshold must be"),
    ],
)
def test_the_toolkit_raises_its_own_clear_errors(tmp_path, call, message):
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(InvalidQuery, match=message):
        call(ChromaDBBackend(), tmp_path)


@pytest.mark.slow
def test_the_toolkit_runs_in_a_bare_python_without_django_settings(tmp_path, tiny_model):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    write_library(tmp_path / "photos", 3)
    code = (
        "from search.standalone import ChromaDBBackend\n"
        f"backend = ChromaDBBackend(embedding_model={tiny_model!r})\n"
        f"print(backend.add_images_from_directory({str(tmp_path / 'photos')!r}))\n"
        "print(len(backend.find_similar(query_text='cat', top_k=2)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "IMGSIM_"))}
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "2"]


@pytest.mark.slow
def test_the_notebook_runs_from_the_repository_root(tmp_path, tiny_model):
    """Its code cells in order, as Jupyter would run them (without matplotlib: results as text)."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    notebook = json.loads((ROOT / "examples" / "notebook.ipynb").read_text())
    assert all(cell.get("id") for cell in notebook["cells"])  # nbformat 4.5 wants cell ids
    code = "\n\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    write_library(tmp_path / "photos", 5)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "IMGSIM_"))}
    env.update({"HF_HUB_OFFLINE": "1", "IMGSIM_MODEL": tiny_model, "PHOTOS": str(tmp_path / "photos")})
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Added 5 images" in result.stdout and len([line for line in result.stdout.splitlines() if ".jpg" in line]) >= 6
    )


def test_the_briefs_metadata_keys_fill_the_real_fields_and_filters_find_them(tmp_path, library):
    from datetime import UTC, datetime

    path = write_photo(tmp_path / "new" / "eiffel.jpg", 78)
    result = add_image(
        path,
        metadata={
            "camera": "Canon EOS R5",
            "date_taken": "2023-06-15T14:30:00",
            "location": "Paris",
            "category": "travel",
            "tags": ["city"],
        },
    )
    meta = Image.objects.get(pk=result["id"]).metadata
    assert meta.camera_model == "Canon EOS R5" and meta.location == "Paris" and meta.extra == {}
    assert meta.taken_at == datetime(2023, 6, 15, 14, 30, tzinfo=UTC)
    for where in (
        {"location": "paris"},
        {"$and": [{"camera_model": "Canon EOS R5"}, {"year": 2023}]},
        {"$and": [{"category": "travel"}, {"tags": {"$in": ["city"]}}]},
    ):
        found = find_similar(query_image_path=path, top_k=3, filter_metadata=where)
        assert [r["id"] for r in found] == [result["id"]], where
    with pytest.raises(InvalidQuery, match="is not a date"):
        add_image(path, metadata={"date_taken": "last summer"})


def test_a_renamed_tag_reaches_the_index_at_once(library):
    from gallery.models import Tag
    from search.embeddings import model_name
    from search.index import get_index
    from search.reconcile import reconcile

    tagged, other = Image.objects.order_by("pk")[:2]
    tagged.metadata.tags.add(Tag.objects.get_or_create(name="sea")[0])
    tag = Tag.objects.get(name="sea")
    tag.name = "ocean"
    tag.save()  # as the admin's tag page does
    found = find_similar(query_image_id=other.pk, top_k=5, filter_metadata={"tags": {"$in": ["ocean"]}})
    assert [r["id"] for r in found] == [tagged.pk]
    metadata, _ = get_index().get(model_name(), [str(tagged.pk)])[str(tagged.pk)]
    assert metadata["tags"] == ["ocean"]
    assert reconcile().metadata_fixed == 0  # nothing left for reconcile to find
