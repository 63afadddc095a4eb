"""`manage.py qcluster`: django-q2's worker cluster, refused while a migration is unapplied
(alsatrade/schema.py). Django takes a command from the first app in INSTALLED_APPS that has it, so
`trading` is listed before `django_q`."""

from django_q.management.commands.qcluster import Command as ClusterCommand

from alsatrade.schema import schema_current_or_refuse


class Command(ClusterCommand):
    def handle(self, *args: str, **options: object) -> None:
        schema_current_or_refuse("The worker (qcluster)")
        super().handle(*args, **options)
