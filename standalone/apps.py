from django.apps import AppConfig


class StandaloneConfig(AppConfig):
    name = "standalone"
    verbose_name = "make dev's one-process platform"
