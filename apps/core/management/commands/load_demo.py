"""Load the demo organisation. Each app may ship a `demo.py` with `load(context)`; they run in
INSTALLED_APPS order (the data-flow order), sharing a dict so later apps reuse earlier rows."""

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Create (or bring up to date) the demo organisation. Safe to run again."

    def handle(self, *args, **options):
        context: dict = {}
        for config in apps.get_app_configs():
            module_name = f"{config.name}.demo"
            if not config.name.startswith("apps.") or find_spec(module_name) is None:
                continue
            with transaction.atomic():
                import_module(module_name).load(context)
            self.stdout.write(f"demo data: {config.label} ✓")
        self.stdout.write(self.style.SUCCESS("Demo organisation ready."))
