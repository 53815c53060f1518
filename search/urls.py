from django.urls import path

from search.views import duplicates, search

app_name = "search"
urlpatterns = [
    path("search/", search.search_page, name="page"),
    path("images/<int:pk>/similar/", search.similar_strip, name="similar"),
    path("queue/", search.queue_status, name="queue"),
    path("duplicates/", duplicates.review, name="duplicates"),
    path("duplicates/scan/", duplicates.scan_start, name="duplicates_scan"),
    path("duplicates/scan/<int:pk>/", duplicates.scan_status, name="duplicates_scan_status"),
    path("duplicates/resolve/", duplicates.resolve, name="duplicates_resolve"),
    path("duplicates/undo/", duplicates.undo, name="duplicates_undo"),
]
