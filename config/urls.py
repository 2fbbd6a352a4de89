from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

# The admin's "View site" link leads to the live pages.
admin.site.site_url = "/live/"

# /healthz, /readyz and /metrics are answered by apps.api.health.ProbesMiddleware.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("apps.api.urls")),
    path("live/", include("apps.live.urls")),
    path("", RedirectView.as_view(pattern_name="live:dashboard"), name="home"),
]

handler500 = "apps.api.errors.api_server_error"
