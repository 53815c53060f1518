"""Search that reads words too: CLIP's ranking of what photos show, fused with the words people wrote.

A text query runs twice: through CLIP (search.python_api.find_similar) and through
the database's full-text search over titles, descriptions, tags, categories,
locations, cameras and file names (gallery.words). Reciprocal rank fusion joins
the two lists: a photo scores 1 / (K + its CLIP rank) plus TEXT_WEIGHT / (K + its
text rank). Words the team typed are deliberate, so they weigh double: a photo
whose caption holds every word of the query ranks above CLIP's best guess, and a
query no caption holds ("cat on a sofa") ranks by CLIP alone. A query in quotes
("Eileen Collins") asks for the words only, as a phrase.
"""

from gallery.filters import to_q, validate
from gallery.models import Image
from gallery.selectors import tags_by_photo
from gallery.words import matched_fields, matching_ids
from search.python_api import describe, find_similar
from search.query import Hit

K = 60
TEXT_WEIGHT = 2.0


def quoted(text: str) -> str | None:
    """The phrase inside a query written in double quotes, else None."""
    text = text.strip()
    if len(text) > 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1]:
        return text[1:-1]
    return None


def _text_hits(text: str, *, phrase: bool, where: dict | None, limit: int) -> list[int]:
    ids = matching_ids(text, phrase=phrase, limit=limit * 2)
    if not ids:
        return []
    allowed = Image.objects.live().filter(pk__in=ids)
    if where:
        allowed = allowed.filter(to_q(validate(where)))
    keep = set(allowed.values_list("pk", flat=True))
    return [pk for pk in ids if pk in keep][:limit]


def search_words_and_meaning(*, query_text: str, top_k: int, filter_metadata: dict | None = None, **clip) -> list[dict]:
    """Photos for a typed query, best first; each result says what it `matched` ("title", "tags", ...) if words did.

    clip holds the other find_similar arguments (exclude_text, threshold); they
    shape the CLIP half only. Text-only hits carry no similarity.
    """
    phrase = quoted(query_text)
    words = phrase if phrase is not None else query_text
    text_ids = _text_hits(words, phrase=phrase is not None, where=filter_metadata, limit=top_k)
    meaning = (
        []
        if phrase is not None
        else find_similar(query_text=query_text, top_k=top_k, filter_metadata=filter_metadata, **clip)
    )
    scores: dict[int, float] = {}
    for rank, result in enumerate(meaning, start=1):
        scores[result["id"]] = scores.get(result["id"], 0.0) + 1.0 / (K + rank)
    for rank, pk in enumerate(text_ids, start=1):
        scores[pk] = scores.get(pk, 0.0) + TEXT_WEIGHT / (K + rank)
    by_id = {result["id"]: result for result in meaning}
    missing = [pk for pk in scores if pk not in by_id]
    by_id.update({result["id"]: result for result in describe([Hit(pk, None) for pk in missing])})
    order = sorted(scores, key=lambda pk: (-scores[pk], -(by_id.get(pk, {}).get("similarity") or -2.0)))
    results = [by_id[pk] for pk in order if pk in by_id][:top_k]
    matched = set(text_ids)
    if matched:
        images = Image.objects.select_related("metadata").in_bulk(list(matched))
        tags = tags_by_photo(list(images))
        for result in results:
            if result["id"] in images:
                result["matched"] = matched_fields(images[result["id"]], tags.get(result["id"], []), words)
    return results
