"""Reads for the search pages: what a search form asks, answered the way the page shows it."""

from dataclasses import dataclass, field

from django.conf import settings

from gallery.filters import to_q, validate
from gallery.models import Image
from search.errors import USER_ERRORS, ModelUnavailable
from search.forms import SearchForm
from search.hybrid import search_words_and_meaning
from search.python_api import find_similar, read_upload


@dataclass
class PageSearch:
    """A search as the page shows it: results, or why there are none."""

    results: list[dict] = field(default_factory=list)
    ran: bool = False  # a query was given (text, photo or "more like")
    like: Image | None = None
    negatives: list[str] = field(default_factory=list)
    error: str = ""
    model_missing: bool = False
    status: int = 200
    nothing_found: str = ""  # why a search that ran found nothing, in the page's words


def form_query(form: SearchForm) -> tuple[dict, Image | None]:
    """The find_similar arguments a valid form asks for, and the photo of "more like this", if any."""
    data = form.cleaned_data
    like = Image.objects.live().filter(pk=data["like"]).first() if data.get("like") else None
    text, negatives = form.query_parts()
    if data.get("image"):
        query = {"query_image": read_upload(data["image"]), "refine_text": text or None}
    elif like:
        query = {"query_image_id": like.pk, "refine_text": text or None}  # "more like this" refined by words
    elif text:
        query = {"query_text": text}
    else:
        return {}, like
    return {
        **query,
        "exclude_text": negatives or None,
        "top_k": data.get("top_k") or settings.IMGSIM_SEARCH_TOP_K,
        # The page's slider shows the setting when the URL has no threshold: it applies then too.
        "threshold": settings.IMGSIM_SEARCH_THRESHOLD if data.get("threshold") is None else data["threshold"],
        "filter_metadata": form.to_where(),
    }, like


def page_search(form: SearchForm) -> PageSearch:
    """Run the search a form describes; a bad form, a missing model or a bad query becomes an error to show."""
    if not form.is_valid():
        # In the words of the page: "Results: ..." rather than the field's name "top_k".
        return PageSearch(error=form.error_words(whole="Search"), status=400)
    outcome = PageSearch(negatives=form.query_parts()[1])
    try:
        query, outcome.like = form_query(form)
        outcome.ran = bool(query)
        if "query_text" in query:
            outcome.results = search_words_and_meaning(**query)
        elif query:
            outcome.results = find_similar(**query)
        if query and not outcome.results:
            outcome.nothing_found = why_nothing_found(query["filter_metadata"], query["threshold"])
    except ModelUnavailable as error:
        outcome.error, outcome.model_missing, outcome.status = str(error), True, 503
    except USER_ERRORS as error:
        outcome.error, outcome.status = str(error), error.status
    return outcome


def why_nothing_found(where: dict | None, threshold: float) -> str:
    """What to change when a search found nothing: the filters, the minimum similarity, or the library."""
    if where and not Image.objects.live().filter(to_q(validate(where))).exists():
        return "No photo matches these filters. Remove one to see more."
    if threshold > -1:
        return f"No photo reaches the minimum similarity of {threshold:g}. Lower it to see more."
    if where:
        return "No photo matching these filters can be searched yet: their embeddings are not computed."
    return "Nothing to search yet: add photos on the Upload page, or wait until their embeddings are computed."


def waiting_count() -> int:
    """Live photos that cannot be found yet: their embeddings are pending or failed."""
    # "in" (not "exclude done"): the embedding_state index answers without a scan of the library.
    waiting = (Image.Embedding.PENDING, Image.Embedding.FAILED)
    return Image.objects.live().filter(embedding_state__in=waiting).count()


def result_ids(params, user) -> list[int]:
    """The ids the search page shows for these URL parameters, in its order (a photo page's prev/next)."""
    search = page_search(SearchForm(params, user=user))
    return [result["id"] for result in search.results]
