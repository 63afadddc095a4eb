"""What-if replays of a strategy's recorded alerts (analytics.models.ReplayRun; analytics/replay_runs.py).

A new table: existing deployments get it empty, and nothing of the previous release reads or writes
it, so it is rolling-safe. Backward drops the table and the replays kept in it (their results can be
computed again from the signals, the klines and the ledger).
"""

import django.utils.timezone
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0007_klines'),
    ]

    operations = [
        migrations.CreateModel(
            name='ReplayRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('strategy', models.CharField(db_index=True, max_length=100)),
                ('start', models.DateTimeField(help_text="The period's start (inclusive), UTC.")),
                ('end', models.DateTimeField(help_text="The period's end (exclusive), UTC.")),
                ('overrides', models.JSONField(blank=True, default=dict, help_text='{preference type: value}, as POST /preferences/{type} takes them.')),
                ('slippage_bps', models.DecimalField(decimal_places=2, default=Decimal('2'), help_text='Every simulated fill moved this far against the trader.', max_digits=8)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], db_index=True, default='queued', max_length=10)),
                ('progress', models.PositiveSmallIntegerField(default=0, help_text='0 to 100.')),
                ('stage', models.CharField(blank=True, max_length=200)),
                ('result', models.JSONField(blank=True, help_text='Written once, when the run is done.', null=True)),
                ('error', models.TextField(blank=True)),
                ('created_by', models.CharField(blank=True, help_text='The user who asked for it (username).', max_length=150)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
    ]
