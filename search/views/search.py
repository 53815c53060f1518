"""The search page, the similar strip of a photo page, and the worker's progress note."""

from django.shortcuts import get_object_or_404, render
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_http_methods

from gallery.models import Album, Image
from gallery.selectors import filter_choices
from search.errors import USER_ERRORS
from search.forms import SearchForm
from search.python_api import find_similar
from search.selectors import page_search, waiting_count


@require_http_methods(["GET", "POST"])
def search_page(request):
    form = SearchForm(
        request.POST if request.method == "POST" else request.GET, request.FILES or None, user=request.user
    )
    search = page_search(form)
    context = {
        "form": form,
        "search": search,
        "pending": waiting_count(),
        "choices": SimpleLazyObject(filter_choices),
        "chips": form.chips(request.GET) if form.is_valid() else [],
        "album_choices": SimpleLazyObject(lambda: list(Album.objects.all())),
        # A photo opened from the results walks them (prev/next) and comes back here.
        "result_query": f"in=search&{request.GET.urlencode()}" if request.method == "GET" else "",
    }
    template = "search/search.html#results" if request.htmx else "search/search.html"
    response = render(request, template, context, status=search.status)
    if request.htmx and request.method == "GET":  # as-you-type replaces the history entry, a submit adds one
        typing = request.headers.get("X-Imgsim-Typing") == "1"
        response["HX-Replace-Url" if typing else "HX-Push-Url"] = request.get_full_path()
    return response


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
