"""Search's JSON endpoints: find photos by text, by a photo or by a vector, and the duplicate queue."""

import json
from typing import Annotated, Any

from django.conf import settings
from django.http import JsonResponse
from pydantic import BaseModel, Field, StringConstraints

from imgsim_site.api import ApiError, api_view, for_client, json_body, parse
from search.duplicates import duplicate_groups
from search.hybrid import search_words_and_meaning
from search.python_api import find_similar, read_upload


class SearchRequest(BaseModel):
    """The body of POST /api/search (JSON, or the same fields as multipart form data with an `image` file)."""

    query: Annotated[str, StringConstraints(max_length=500)] | None = None
    image_id: Annotated[int, Field(ge=1)] | None = None
    # A vector from the same model (e.g. computed elsewhere with it); checked for length and values.
    embedding: (
        Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=1, max_length=4096)] | None
    ) = None
    exclude: Annotated[str, StringConstraints(max_length=200)] | None = None
    top_k: Annotated[int, Field(ge=1, le=1000)] | None = None
    threshold: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)] | None = None
    filters: dict[str, Any] | None = None


def _multipart(request) -> dict:
    data = {key: value for key, value in request.POST.items() if value != ""}
    if "filters" in data:
        try:
            data["filters"] = json.loads(data["filters"])
        except ValueError:
            raise ApiError(400, "filters must be a JSON object") from None
    return data


@api_view({"POST"})
def search(request):
    as_json = request.content_type == "application/json"
    query = parse(SearchRequest, json_body(request) if as_json else _multipart(request))
    upload = None if as_json else request.FILES.get("image")
    photo = query.image_id is not None or upload is not None or query.embedding is not None
    common = {
        "exclude_text": [term.strip() for term in (query.exclude or "").split(",") if term.strip()] or None,
        "threshold": query.threshold,
        "filter_metadata": query.filters or None,
    }
    if query.query and not photo:  # words and meaning, fused (search.hybrid)
        results = search_words_and_meaning(
            query_text=query.query, top_k=query.top_k or settings.IMGSIM_SEARCH_TOP_K, **common
        )
    else:
        results = find_similar(
            query_image_id=query.image_id,
            query_image=read_upload(upload) if upload is not None else None,
            query_embedding=query.embedding,
            refine_text=query.query or None,
            top_k=query.top_k,
            **common,
        )
    return JsonResponse({"results": [for_client(request, result) for result in results]})


@api_view({"GET"}, editor=True)
def duplicates(request):
    groups = duplicate_groups(tier=request.GET.get("tier") or None)
    return JsonResponse({"groups": [group.as_dict() for group in groups]})
