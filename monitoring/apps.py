from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Zenith monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from .collector import ZenithCollector

        if not any(isinstance(c, ZenithCollector) for c in list(REGISTRY._collector_to_names)):
            REGISTRY.register(ZenithCollector())
