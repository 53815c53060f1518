"""imgsim's Python API: the brief's functions, backed by the configured library.

    from search.python_api import find_similar
    for result in find_similar(query_text="cat on a sofa", top_k=5, threshold=0.2):
        print(result["filename"], f"{result['similarity']:.3f}")

Pages and the JSON API call these same functions, so they give the same results.
"""

import hashlib
import math
from pathlib import Path

import numpy as np
from django.conf import settings

from gallery import vectors as stored_vectors
from gallery.models import Image
from gallery.selectors import tags_by_photo
from gallery.serializers import image_dict
from gallery.services import METADATA_TEXT_FIELDS, metadata_update
from search import text_queries
from search.embeddings import get_embedder, model_name
from search.errors import InvalidQuery, QueryTooLarge, UnsupportedImage
from search.query import Hit, nearest
from search.sync import expected_dimension

# How strongly a negative phrase ("beach -people") pushes results away from it.
NEGATIVE_WEIGHT = 0.5


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm == 0:
        raise InvalidQuery("the query embedding is empty or not finite")
    return (vector / norm).astype(np.float32)


def image_vector(image) -> np.ndarray:
    """Encode a PIL image (not stored anywhere) with the configured model."""
    embedder = get_embedder()
    return embedder.encode_pixels(embedder.preprocess(image)[None])[0]


def query_vector(
    *,
    query_text: str | None = None,
    query_image_path=None,
    query_image=None,
    query_image_id: int | None = None,
    query_embedding=None,
    exclude_text: str | list[str] | None = None,
    refine_text: str | None = None,
) -> tuple[np.ndarray, frozenset[int]]:
    """Build the unit query vector from exactly one kind of query; return it and ids to leave out.

    exclude_text pushes results away from a phrase, or from each of a list of them
    ("beach -people -cars"); refine_text adds words to a photo query ("more like
    this, but at night").
    """
    given = [query_text or None, query_image_path, query_image, query_image_id, query_embedding]
    if sum(value is not None for value in given) != 1:
        raise InvalidQuery(
            "give exactly one of query_text, query_image_path, query_image, query_image_id, query_embedding"
        )
    exclude_ids: frozenset[int] = frozenset()
    if query_text:
        vector = text_queries.encode([query_text.strip()[:500]])[0]
    elif query_image_id is not None:
        image = Image.objects.live().filter(pk=query_image_id).first()
        if image is None:
            raise InvalidQuery(f"no photo with id {query_image_id}")
        vector = stored_vectors.load_one(image.pk)
        if image.embedding_state != Image.Embedding.DONE or image.embedding_model != model_name() or vector is None:
            raise InvalidQuery(f"photo {query_image_id} has no embedding yet; run `python manage.py reconcile`")
        exclude_ids = frozenset({image.pk})
    elif query_embedding is not None:
        vector = custom_embedding(query_embedding)
    else:
        from gallery.decoding import DecodeError, NotAnImage, decode_query

        try:
            if query_image_path is not None:
                path = Path(query_image_path)
                _refuse_if_large(path.stat().st_size)  # before reading it
                data = path.read_bytes()
            else:
                data = query_image
                _refuse_if_large(len(data))
            pixels = decode_query(data)
        except NotAnImage as error:
            raise UnsupportedImage(f"the query image cannot be used: {error}") from None
        except DecodeError as error:
            raise InvalidQuery(f"the query image cannot be used: {error}") from None
        except OSError as error:
            raise InvalidQuery(f"cannot read {query_image_path}: {error.strerror}") from None
        vector = image_vector(pixels)
    vector = _unit(vector)
    if refine_text and refine_text.strip() and not query_text:
        vector = _unit(vector + _unit(text_queries.encode([refine_text.strip()[:500]])[0]))
    negatives = [exclude_text] if isinstance(exclude_text, str) else list(exclude_text or [])
    negatives = [phrase.strip()[:500] for phrase in negatives if phrase and phrase.strip()][:20]
    if negatives:
        for negative in text_queries.encode(negatives):
            vector = _unit(vector - NEGATIVE_WEIGHT * _unit(negative))
    return vector, exclude_ids


def describe(hits: list[Hit]) -> list[dict]:
    """Turn hits into the brief's result dicts, in the same order."""
    ids = [hit.image_id for hit in hits]
    images = Image.objects.select_related("metadata").in_bulk(ids)
    tags = tags_by_photo(ids) if images else {}
    results = []
    for hit in hits:
        image = images.get(hit.image_id)
        if image is not None:
            results.append(image_dict(image, similarity=hit.similarity, tags=tags.get(image.pk, [])))
    return results


def find_similar(
    *,
    query_text: str | None = None,
    query_image_path=None,
    query_image: bytes | None = None,
    query_image_id: int | None = None,
    query_embedding=None,
    exclude_text: str | list[str] | None = None,
    refine_text: str | None = None,
    top_k: int | None = None,
    threshold: float | None = None,
    filter_metadata: dict | None = None,
) -> list[dict]:
    """Return the photos most similar to the query, best first, each with its similarity."""
    vector, exclude_ids = query_vector(
        query_text=query_text,
        query_image_path=query_image_path,
        query_image=query_image,
        query_image_id=query_image_id,
        query_embedding=query_embedding,
        exclude_text=exclude_text,
        refine_text=refine_text,
    )
    top_k = settings.IMGSIM_SEARCH_TOP_K if top_k is None else int(top_k)
    if not 1 <= top_k <= 1000:
        raise InvalidQuery("top_k must be between 1 and 1000")
    if threshold is not None and not -1.0 <= float(threshold) <= 1.0:
        raise InvalidQuery("threshold must be between -1 and 1")
    hits = nearest(vector, top_k=top_k, threshold=threshold, where=filter_metadata or None, exclude_ids=exclude_ids)
    return describe(hits)


def _refuse_if_large(size: int) -> None:
    if size > settings.IMGSIM_UPLOAD_MAX_BYTES:
        raise QueryTooLarge(f"the query image is larger than {settings.IMGSIM_UPLOAD_MAX_BYTES // 2**20} MB")


def read_upload(upload) -> bytes:
    """The bytes of an uploaded query photo, refused by its size before they are read."""
    _refuse_if_large(upload.size)
    return upload.read()


def custom_embedding(embedding) -> np.ndarray:
    """A caller's own vector as a unit float32 vector, refused unless it has the configured model's length."""
    try:
        vector = np.asarray(embedding, dtype=np.float32).ravel()
    except (TypeError, ValueError):
        raise InvalidQuery("the embedding must be a list of numbers") from None
    dimension = expected_dimension(model_name())
    if dimension is None:
        dimension = get_embedder().dimension  # no stored vectors yet: the model says (raises if it is missing)
    if vector.shape[0] != dimension:
        raise InvalidQuery(
            f"the embedding has {vector.shape[0]} values; {model_name()} gives {dimension}. "
            "Give a vector of the configured model, or leave embedding out to let imgsim compute it."
        )
    return _unit(vector)


def add_image(path, *, embedding=None, metadata: dict | None = None, user=None) -> dict:
    """Ingest one photo file (the brief's add_image); return its result dict or raise InvalidQuery."""
    from gallery.ingest import IngestError, Pipeline, discover

    try:
        sources, _ = discover(Path(path))
    except IngestError as error:
        raise InvalidQuery(str(error)) from None
    if len(sources) != 1:
        raise InvalidQuery(f"{path} is not a single file")
    vector = custom_embedding(embedding) if embedding is not None else None  # checked before anything is stored
    pipeline = Pipeline(
        user=user,
        embed=embedding is None,
        category=(metadata or {}).get("category", ""),
        tags=(metadata or {}).get("tags", []),
    )
    report = pipeline.run(sources)
    outcome = report.outcomes[0]
    if outcome.status not in ("added", "known"):
        raise InvalidQuery(f"{path}: {outcome.reason}")
    if outcome.image_id:
        image = Image.objects.get(pk=outcome.image_id)
    else:
        image = Image.objects.get(sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest())
    if vector is not None and outcome.status == "added":
        stored_vectors.save({image.pk: vector})
        image.embedding_model, image.embedding_state = model_name(), Image.Embedding.DONE
        image.save(update_fields=["embedding_model", "embedding_state"])
    if metadata:
        _apply_metadata(image, metadata)
    image.refresh_from_db()
    return image_dict(image)


# The brief's metadata keys, and the fields they fill (the rest stay in the free-form extra).
BRIEF_KEYS = {"camera": "camera_model", "date_taken": "taken_at"}


def _apply_metadata(image: Image, metadata: dict) -> None:
    """Store the brief's metadata dict: known fields in their columns, tags as tags, the rest as extra.

    The brief's keys fill the real fields, so its filters find the photo: `camera` the
    camera model, `date_taken` (ISO 8601, or a date or datetime) the date taken,
    `location`, `category` and `tags` their own.
    """
    metadata = {BRIEF_KEYS.get(key, key): value for key, value in metadata.items()}
    if "taken_at" in metadata:
        metadata["taken_at"] = _date_taken(metadata["taken_at"])
    known = {key: value for key, value in metadata.items() if key in METADATA_TEXT_FIELDS or key == "taken_at"}
    extra = {key: value for key, value in metadata.items() if key not in known and key != "tags"}
    metadata_update(image=image, fields=known, tags=metadata.get("tags"), extra=extra)


def _date_taken(value):
    """A date taken from the brief's metadata: a datetime, a date, or an ISO 8601 string (UTC when naive)."""
    from datetime import UTC, date, datetime, time

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidQuery(f"date_taken {value!r} is not a date such as 2023-06-15 or 2023-06-15T14:30") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(12, 0))
    if not isinstance(value, datetime):
        raise InvalidQuery(f"date_taken must be a date, a datetime or an ISO 8601 string, not {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_images_from_directory(
    directory, *, max_images: int | None = None, recursive: bool = True, extensions: list[str] | None = None, user=None
) -> int:
    """Ingest a folder (the brief's add_images_from_directory); return how many photos were added."""
    from gallery.ingest import Pipeline, discover

    wanted = {("." + e.lstrip(".")).lower() for e in extensions} if extensions else None
    sources, _ = discover(Path(directory), recursive=recursive, extensions=wanted)
    return Pipeline(user=user).run(sources, limit=max_images).added


def find_duplicates(
    similarity_threshold: float = 0.95, *, tiers=None, hamming_threshold: int | None = None
) -> list[dict]:
    """The brief's find_duplicates: pairs with image1_filename, image2_filename, similarity, tier, hamming, rule.

    similarity_threshold is the CLIP similarity of the "similar shot" tier. Exact
    copies and near-duplicates are found by rules of their own (the `rule` of each
    pair says which matched), so a near pair can be less similar than the
    threshold. tiers=["exact", "near"] leaves the other tiers out.
    """
    from search import duplicates

    return duplicates.find_duplicates(similarity_threshold, tiers=tiers, hamming_threshold=hamming_threshold)


def get_stats() -> dict:
    """The brief's get_stats: total_images, avg_width, avg_height, embedding_model and more."""
    from gallery import stats

    return stats.get_stats(charts=False)
