"""The kill switch's history (django-simple-history): who changed it, when, from which address
(`changed_from`, new) and why.

The existing row keeps its state, with no address (`changed_from` null: not recorded before), and
gets one history row copying it, so the first change after the upgrade shows a before -> after.
A new nullable column and a new table: the previous release runs on this schema unchanged.
"""

import django.db.models.deletion
import simple_history.models
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.utils import timezone


def record_current_state(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    halt_model = apps.get_model("trading", "TradingHalt")
    history_model = apps.get_model("trading", "HistoricalTradingHalt")
    copied = [field.attname for field in history_model._meta.fields if not field.name.startswith("history_")]
    history_model.objects.bulk_create(
        history_model(
            **{name: getattr(halt, name) for name in copied},
            history_date=timezone.now(), history_type="+", history_change_reason="state when the history began",
        )
        for halt in halt_model.objects.iterator()
    )


class Migration(migrations.Migration):

    dependencies = [
        ('trading', '0012_drop_drf_tokens'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='tradinghalt',
            name='changed_from',
            field=models.GenericIPAddressField(blank=True, help_text='The client address of the last change.', null=True),
        ),
        migrations.CreateModel(
            name='HistoricalTradingHalt',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('halted', models.BooleanField(default=False)),
                ('reason', models.CharField(blank=True, max_length=255)),
                ('changed_by', models.CharField(blank=True, max_length=150)),
                ('changed_at', models.DateTimeField(blank=True, editable=False)),
                ('changed_from', models.GenericIPAddressField(blank=True, help_text='The client address of the last change.', null=True)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'historical trading halt (kill switch)',
                'verbose_name_plural': 'historical trading halt (kill switch)s',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.RunPython(record_current_state, migrations.RunPython.noop),
    ]
