from django.urls import path

from gallery import views

app_name = "gallery"
urlpatterns = [
    path("", views.index, name="index"),
    path("images/<int:pk>/", views.detail, name="detail"),
    path("images/<int:pk>/original", views.original, name="original"),
    path("images/<int:pk>/<str:kind>.img", views.rendition, name="rendition"),
    path("upload/", views.upload, name="upload"),
]
