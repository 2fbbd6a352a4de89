from django.urls import path

from apps.live.views import dashboard, run_page

app_name = "live"
urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("runs/<uuid:run_id>/", run_page, name="run"),
]
