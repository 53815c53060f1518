from django.urls import path

from search import api_views, duplicate_views, views

app_name = "search"
urlpatterns = [
    path("search/", views.search_page, name="page"),
    path("images/<int:pk>/similar/", views.similar_strip, name="similar"),
    path("stats/", views.stats_page, name="stats"),
    path("stats/export.json.gz", views.export_download, name="export"),
    path("queue/", views.queue_status, name="queue"),
    path("profile/", views.profile, name="profile"),
    path("api/search", api_views.search, name="api_search"),
    path("api/upload", api_views.upload, name="api_upload"),
    path("api/images/<int:pk>", api_views.image, name="api_image"),
    path("api/stats", api_views.stats, name="api_stats"),
    path("api/duplicates", api_views.duplicates, name="api_duplicates"),
    path("api/openapi.json", api_views.openapi, name="api_openapi"),
    path("duplicates/", duplicate_views.review, name="duplicates"),
    path("duplicates/scan/", duplicate_views.scan_start, name="duplicates_scan"),
    path("duplicates/scan/<int:pk>/", duplicate_views.scan_status, name="duplicates_scan_status"),
    path("duplicates/resolve/", duplicate_views.resolve, name="duplicates_resolve"),
    path("duplicates/undo/", duplicate_views.undo, name="duplicates_undo"),
]
