from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from imgsim_site import login, views

admin.site.site_header = "imgsim administration"
admin.site.site_title = "imgsim admin"
admin.site.index_title = "Library"

urlpatterns = [
    path("", include("gallery.urls")),
    path("", include("search.urls")),
    path("accounts/login/", login.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("imgsim_site.api_urls")),
    path("profile/", views.profile, name="profile"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
