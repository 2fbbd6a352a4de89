from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "apps.live"
    verbose_name = "Live"

    def ready(self) -> None:
        from apps.live.access import live_access_subscribe

        live_access_subscribe()
