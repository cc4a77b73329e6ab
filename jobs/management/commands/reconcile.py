"""`manage.py reconcile`: one pass of the reconciler (it also runs every minute)."""

from django.core.management.base import BaseCommand

from jobs.management.commands._common import dumps
from jobs.services import reconcile


class Command(BaseCommand):
    help = "Repair lost batches, missing RQ messages, unfilled windows and unfinalized jobs once."

    def handle(self, *args, **opts):
        self.stdout.write(dumps(reconcile().as_dict()))
