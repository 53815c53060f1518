from django.conf import settings
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods

from gallery.models import Image
from search.python_api import find_similar
from search.errors import USER_ERRORS, ModelUnavailable
from search.forms import SearchForm


def _pending_count() -> int:
    return Image.objects.live().exclude(embedding_state=Image.Embedding.DONE).count()


@require_http_methods(["GET", "POST"])
def search_page(request):
    form = SearchForm(request.POST if request.method == "POST" else request.GET, request.FILES or None)
    results, error, model_missing, ran, status = [], "", False, False, 200
    like = None
    if form.is_valid():
        text, negative = form.query_parts()
        data = form.cleaned_data
        upload = data.get("image")
        like = Image.objects.live().filter(pk=data["like"]).first() if data.get("like") else None
        query = {}
        if upload:
            query["query_image"] = upload.read()
        elif like:
            query["query_image_id"] = like.pk
        elif text:
            query["query_text"] = text
        if query:
            ran = True
            try:
                results = find_similar(
                    **query, exclude_text=negative or None, top_k=data.get("top_k") or settings.IMGSIM_SEARCH_TOP_K,
                    threshold=data.get("threshold"), filter_metadata=form.to_where(),
                )
            except ModelUnavailable as exc:
                error, model_missing, status = str(exc), True, 503
            except USER_ERRORS as exc:
                error, status = str(exc), exc.status
    else:
        error = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        status = 400
    context = {
        "form": form, "results": results, "error": error, "model_missing": model_missing, "ran": ran, "like": like,
        "pending": _pending_count(), "negative": form.query_parts()[1] if form.is_valid() else "",
    }
    template = "search/search.html#results" if request.htmx else "search/search.html"
    return render(request, template, context, status=status)


@require_GET
def similar_strip(request, pk: int):
    image = get_object_or_404(Image, pk=pk, trashed_at__isnull=True)
    results, error = [], ""
    try:
        results = find_similar(query_image_id=image.pk, top_k=12)
    except USER_ERRORS as exc:
        error = str(exc)
    template = "search/similar.html#strip" if request.htmx else "search/similar.html"
    return render(request, template, {"image": image, "results": results, "error": error})


@require_GET
def queue_status(request):
    """The worker's progress note: polled by the page every 2 s until nothing waits."""
    waiting = Image.objects.waiting_for_embedding().count()
    return render(request, "search/_queue.html", {"waiting": waiting})
