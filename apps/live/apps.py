from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "apps.live"
    verbose_name = "Live"

    def ready(self) -> None:
        from apps.events.subscribers import events_subscribe, log_lines_subscribe
        from apps.live.access import live_access_subscribe
        from apps.live.broadcast import live_broadcast, live_broadcast_log

        live_access_subscribe()
        events_subscribe(live_broadcast)
        log_lines_subscribe(live_broadcast_log)
