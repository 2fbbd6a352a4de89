from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from apps.workflows import receivers  # noqa: F401  (a run's end moves its workflow on)
