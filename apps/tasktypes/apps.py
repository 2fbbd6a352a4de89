from django.apps import AppConfig


class TaskTypesConfig(AppConfig):
    name = "apps.tasktypes"
    verbose_name = "Task types"

    def ready(self) -> None:
        from apps.tasktypes.registry import task_modules_load

        task_modules_load()
