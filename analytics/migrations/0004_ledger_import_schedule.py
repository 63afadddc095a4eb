"""The ledger import job, every 5 minutes, created with the schema so a fresh install needs no set-up."""

from django.db import migrations

NAME = "analytics: import the exchange's ledger"


def create(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME, defaults={"func": "analytics.tasks.import_ledger", "schedule_type": "I", "minutes": 5, "repeats": -1}
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_ledger_entry"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create, remove)]
