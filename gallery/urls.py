from django.urls import path

from gallery.views import albums, browse, bulk, edit, media, stats, trash, upload

app_name = "gallery"
urlpatterns = [
    path("", browse.index, name="index"),
    path("images/<int:pk>/", browse.detail, name="detail"),
    path("images/<int:pk>/original", media.original, name="original"),
    path("images/<int:pk>/<str:kind>.img", media.rendition, name="rendition"),
    path("images/<int:pk>/edit/", edit.edit, name="edit"),
    path("images/<int:pk>/facts/", edit.facts, name="facts"),
    path("images/<int:pk>/favourite/", edit.favourite, name="favourite"),
    path("images/<int:pk>/trash/", trash.image_to_trash, name="image_trash"),
    path("albums/", albums.albums, name="albums"),
    path("albums/new/", albums.album_new, name="album_new"),
    path("albums/photos/", albums.album_photos, name="album_photos"),
    path("albums/<int:pk>/", albums.album, name="album"),
    path("albums/<int:pk>/change/", albums.album_change, name="album_change"),
    path("albums/<int:pk>/delete/", albums.album_remove_all, name="album_delete"),
    path("albums/<int:pk>/cover/", albums.album_cover, name="album_cover"),
    path("bulk/", bulk.bulk, name="bulk"),
    path("upload/", upload.upload, name="upload"),
    path("stats/", stats.stats_page, name="stats"),
    path("stats/export.json.gz", stats.export_download, name="export"),
    path("trash/", trash.trash, name="trash"),
    path("trash/restore/", trash.trash_restore, name="trash_restore"),
    path("trash/delete/", trash.trash_delete, name="trash_delete"),
]
