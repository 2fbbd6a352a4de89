from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    verbose_name = "Teams and access"

    def ready(self) -> None:
        from apps.accounts.signals import model_signals_connect

        model_signals_connect()
