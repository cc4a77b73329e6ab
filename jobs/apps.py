from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Zenith jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # What monitoring watches of the jobs app is registered with it (monitoring.registry),
        # so that monitoring never imports jobs; and each payload codec that needs the domain
        # registers its decoder with the engine (jobs.engine.payloads).
        from django.conf import settings
        from prometheus_client import REGISTRY

        from jobs.datatypes import stored_source  # noqa: F401  (registers the project-tx codec)
        from jobs.engine import breaker
        from jobs.engine.collector import JobsCollector
        from jobs.importing import blocks  # noqa: F401  (registers the csv+zlib codec)
        from jobs.selectors.core import backlog_totals
        from monitoring import registry
        from monitoring.registry import Schedule
        from zenith.infra.redis import get_redis

        registry.register_backlog(backlog_totals)
        registry.register_breaker_check(
            lambda name: breaker.status(get_redis(), name)["state"] == breaker.CLOSED)
        registry.register_schedule(lambda: Schedule(
            "zenith-reconcile", "jobs.tasks.reconcile", "default-high",
            interval=settings.ZENITH_RECONCILE_INTERVAL_SECONDS, timeout=300))
        registry.register_schedule(lambda: Schedule(
            "zenith-cleanup-old-jobs", "jobs.tasks.cleanup_old_jobs", "default-low", cron="0 2 * * *", timeout=3600))
        collector = JobsCollector()
        registry.register_collector(collector)
        if not any(isinstance(c, JobsCollector) for c in list(REGISTRY._collector_to_names)):
            REGISTRY.register(collector)
