from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from apps.api.health import healthz, readyz

# The admin's "View site" link leads to the live pages.
admin.site.site_url = "/live/"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("apps.api.urls")),
    path("live/", include("apps.live.urls")),
    path("", RedirectView.as_view(pattern_name="live:dashboard"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
]

handler500 = "apps.api.errors.api_server_error"
