# The lane's next signal comes from a partial index of pending signals (a few rows), not from an index
# of every signal of the symbol. Built CONCURRENTLY on PostgreSQL, so the webhook goes on inserting
# signals while a large table is indexed (docs/DEPLOY.md, upgrades); a plain CREATE INDEX elsewhere.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgreSQL(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('trading', '0009_signal_fewer_indexes'),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='signal',
            index=models.Index(condition=models.Q(('status__in', ['queued', 'executing'])),
                               fields=['symbol', 'received_at', 'id'], name='signal_pending'),
        ),
    ]
