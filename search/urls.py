from django.urls import path

from search import json_api
from search.views import duplicates, search

app_name = "search"
urlpatterns = [
    path("search/", search.search_page, name="page"),
    path("images/<int:pk>/similar/", search.similar_strip, name="similar"),
    path("queue/", search.queue_status, name="queue"),
    path("profile/", search.profile, name="profile"),
    path("api/search", json_api.search, name="api_search"),
    path("api/upload", json_api.upload, name="api_upload"),
    path("api/images/<int:pk>", json_api.image, name="api_image"),
    path("api/stats", json_api.stats, name="api_stats"),
    path("api/duplicates", json_api.duplicates, name="api_duplicates"),
    path("api/openapi.json", json_api.openapi, name="api_openapi"),
    path("duplicates/", duplicates.review, name="duplicates"),
    path("duplicates/scan/", duplicates.scan_start, name="duplicates_scan"),
    path("duplicates/scan/<int:pk>/", duplicates.scan_status, name="duplicates_scan_status"),
    path("duplicates/resolve/", duplicates.resolve, name="duplicates_resolve"),
    path("duplicates/undo/", duplicates.undo, name="duplicates_undo"),
]
