from django.contrib import admin
from django.urls import include, path

from apps.api.health import healthz, readyz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("apps.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
]

handler500 = "apps.api.errors.api_server_error"
