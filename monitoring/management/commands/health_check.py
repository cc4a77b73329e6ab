import json

from django.core.management.base import BaseCommand

from monitoring.health import health_check


class Command(BaseCommand):
    help = "Run the health check once: sample resources, evaluate thresholds, raise/resolve alerts."

    def handle(self, *args, **opts):
        self.stdout.write(json.dumps(health_check().as_dict(), indent=2, default=str))
