from django.contrib.auth.views import LoginView, LogoutView
from django.urls import path

from apps.live.views import (
    dashboard,
    jobs_page,
    run_page,
    workflow_run_page,
    workflows_page,
)

app_name = "live"
urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("jobs/", jobs_page, name="jobs"),
    path("runs/<uuid:run_id>/", run_page, name="run"),
    path("workflows/", workflows_page, name="workflows"),
    path("workflow-runs/<uuid:workflow_run_id>/", workflow_run_page, name="workflow-run"),
    path(
        "login/",
        LoginView.as_view(template_name="live/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", LogoutView.as_view(next_page="live:login"), name="logout"),
]
