"""Retention job: prune unauthenticated refused attempts and old django-q2 success records."""

from django.db import migrations

NAME = "trading: prune refused attempts and job records"


def create(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME, defaults={"func": "trading.retention.prune", "schedule_type": "I", "minutes": 10, "repeats": -1}
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("trading", "0003_exactly_once")]

    operations = [migrations.RunPython(create, remove)]
