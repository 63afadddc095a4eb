"""The exchange's 1-minute klines, imported once and kept (analytics.models.Kline; `manage.py
import_klines`), for what-if replays of recorded alerts.

A new table: existing deployments get it empty, and nothing of the previous release reads or writes
it, so it is rolling-safe (its unique constraint is the new table's own). Backward drops the table
and the klines imported into it; importing them again brings them back.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0006_snapshot_accounts'),
    ]

    operations = [
        migrations.CreateModel(
            name='Kline',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('symbol', models.CharField(max_length=30)),
                ('open_time', models.DateTimeField(help_text="The minute's start, UTC.")),
                ('open', models.DecimalField(decimal_places=10, max_digits=28)),
                ('high', models.DecimalField(decimal_places=10, max_digits=28)),
                ('low', models.DecimalField(decimal_places=10, max_digits=28)),
                ('close', models.DecimalField(decimal_places=10, max_digits=28)),
                ('volume', models.DecimalField(decimal_places=10, max_digits=28)),
            ],
            options={
                'ordering': ['symbol', 'open_time'],
                'constraints': [models.UniqueConstraint(fields=('symbol', 'open_time'), name='kline_once')],
            },
        ),
    ]
