from django.apps import AppConfig


class PreferencesConfig(AppConfig):
    name = "preferences"
    verbose_name = "Strategy preferences"

    def ready(self) -> None:
        from preferences import intake  # noqa: F401  (connects the strategy-generation signals)
