"""Whether a faster numeric path (int8) finds what fp32 finds, measured on the library's own photos.

Quantised weights can lose accuracy on real CLIP weights in ways a probe batch of
random pixels does not show, so int8 is used only after this check passed here.
A sample of stored photos is encoded on both paths, with texts from the library
(categories, tags, titles) and everyday queries. Figures: mean cosine to the
reference path per tower, and recall@10 agreement: the share of each query's top 10
on the reference path that the candidate also puts in its top 10, for
image -> image and text -> image queries. The bar is MIN_RECALL for both.
"""

import numpy as np

MIN_RECALL = 0.97
MIN_SAMPLE = 20
EVERYDAY_QUERIES = (
    "a photo of a person",
    "people smiling at a party",
    "a dog",
    "a cat sleeping",
    "a beach at sunset",
    "snowy mountains",
    "a city street at night",
    "food on a plate",
    "a car",
    "a forest",
    "flowers in a garden",
    "a child playing",
    "a building",
    "the sea",
    "a document or a screenshot",
    "a group photo",
)


class NotEnoughPhotos(Exception):
    pass


def library_sample(size: int, seed: int = 0) -> list:
    """Up to `size` live photos with a stored file, spread over the library (a fixed seed: the same sample again)."""
    from gallery.models import Image

    ids = list(Image.objects.live().values_list("pk", flat=True))
    chosen = np.random.default_rng(seed).permutation(ids)[:size].tolist() if ids else []
    return list(Image.objects.filter(pk__in=chosen).select_related("metadata"))


def library_texts(limit: int = 40) -> list[str]:
    from gallery.models import Metadata, Tag

    words = set(Metadata.objects.exclude(category="").values_list("category", flat=True).distinct()[:limit])
    words |= set(Tag.objects.values_list("name", flat=True)[:limit])
    words |= set(Metadata.objects.exclude(title="").values_list("title", flat=True)[:limit])
    return sorted(words)[:limit] + list(EVERYDAY_QUERIES)


def agreement(reference: np.ndarray, candidate: np.ndarray, queries_ref, queries_cand, k: int, *, skip_self: bool):
    """Mean share of each query's top k on the reference vectors that the candidate also ranks top k."""
    scores_ref, scores_cand = queries_ref @ reference.T, queries_cand @ candidate.T
    if skip_self:  # an image is its own best match on both paths: leave it out
        np.fill_diagonal(scores_ref, -np.inf)
        np.fill_diagonal(scores_cand, -np.inf)
    top_ref = np.argsort(-scores_ref, axis=1)[:, :k]
    top_cand = np.argsort(-scores_cand, axis=1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_ref, top_cand)]))


def compare(embedder, *, path: str = "int8", against: str = "fp32", sample: int = 200, progress=None) -> dict:
    """Encode a library sample on both paths; return the figures and whether `path` passes the bar."""
    from gallery.decoding import open_for_embedding

    photos = library_sample(sample)
    pixels = []
    for photo in photos:
        try:
            pixels.append(embedder.preprocess(open_for_embedding(photo)))
        except Exception:  # a photo whose files went missing: the sample goes on without it
            continue
        if progress:
            progress(len(pixels), len(photos))
    if len(pixels) < MIN_SAMPLE:
        raise NotEnoughPhotos(
            f"the check needs at least {MIN_SAMPLE} readable photos in the library; it has {len(pixels)}"
        )
    pixels = np.stack(pixels)
    images = {name: embedder.encode_pixels(pixels, path=name) for name in (against, path)}
    texts = library_texts()
    queries = {name: embedder.encode_texts(texts, path=name) for name in (against, path)}
    k = min(10, len(pixels) - 1)
    figures = {
        "path": path,
        "against": against,
        "photos": len(pixels),
        "texts": len(texts),
        "k": k,
        "image_cosine": round(float(np.mean(np.sum(images[against] * images[path], axis=1))), 5),
        "text_cosine": round(float(np.mean(np.sum(queries[against] * queries[path], axis=1))), 5),
        "image_to_image_recall": round(
            agreement(images[against], images[path], images[against], images[path], k, skip_self=True), 4
        ),
        "text_to_image_recall": round(
            agreement(images[against], images[path], queries[against], queries[path], k, skip_self=False), 4
        ),
        "min_recall": MIN_RECALL,
    }
    figures["passed"] = min(figures["image_to_image_recall"], figures["text_to_image_recall"]) >= MIN_RECALL
    return figures
