from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from workers.registry import task_modules_load

        task_modules_load()
