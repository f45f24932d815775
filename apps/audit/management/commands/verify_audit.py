from django.core.management.base import BaseCommand, CommandError

from apps.audit.selectors import verify_chain


class Command(BaseCommand):
    help = "Verify the audit hash chain; exits non-zero if any event was edited or deleted."

    def handle(self, *args, **options):
        report = verify_chain()
        for problem in report.problems:
            self.stderr.write(problem)
        if not report.ok:
            raise CommandError(f"audit chain broken: {len(report.problems)} problem(s) in {report.checked} events")
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {report.checked} events verified"))
