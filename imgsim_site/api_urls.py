"""The JSON API under /api/: each app's endpoints, mounted in one place."""

from django.urls import path

from gallery import json_api as gallery_api
from imgsim_site.api import openapi
from search import json_api as search_api

app_name = "api"
urlpatterns = [
    path("search", search_api.search, name="search"),
    path("duplicates", search_api.duplicates, name="duplicates"),
    path("upload", gallery_api.upload, name="upload"),
    path("images/<int:pk>", gallery_api.image, name="image"),
    path("stats", gallery_api.stats, name="stats"),
    path("openapi.json", openapi, name="openapi"),
]
