from django.urls import path

from search import duplicate_views, views

app_name = "search"
urlpatterns = [
    path("search/", views.search_page, name="page"),
    path("images/<int:pk>/similar/", views.similar_strip, name="similar"),
    path("stats/", views.stats_page, name="stats"),
    path("duplicates/", duplicate_views.review, name="duplicates"),
    path("duplicates/scan/", duplicate_views.scan_start, name="duplicates_scan"),
    path("duplicates/scan/<int:pk>/", duplicate_views.scan_status, name="duplicates_scan_status"),
    path("duplicates/resolve/", duplicate_views.resolve, name="duplicates_resolve"),
    path("trash/", duplicate_views.trash, name="trash"),
    path("trash/action/", duplicate_views.trash_action, name="trash_action"),
]
