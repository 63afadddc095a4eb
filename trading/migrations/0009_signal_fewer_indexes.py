# Signal keeps only the indexes a query needs (each costs every webhook INSERT): the single-column
# indexes of symbol and strategy (composite indexes start with them) and the `_like` twins go. The new
# unique constraint is built before the old one is dropped, in one transaction: no moment without one.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('preferences', '0006_strategy_history'),
        ('trading', '0008_exchange_reported_orders'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='signal',
            constraint=models.UniqueConstraint(fields=('idempotency_key',), name='signal_idempotency_key_unique'),
        ),
        migrations.AddIndex(
            model_name='signal',
            index=models.Index(fields=['status'], name='signal_status'),
        ),
        migrations.AlterField(
            model_name='signal',
            name='idempotency_key',
            field=models.CharField(blank=True, max_length=128, null=True),
        ),
        migrations.AlterField(
            model_name='signal',
            name='status',
            field=models.CharField(choices=[('received', 'Received'), ('filtered', 'Filtered'), ('rejected', 'Rejected'), ('queued', 'Queued'), ('executing', 'Executing'), ('done', 'Done'), ('failed', 'Failed')], default='received', max_length=10),
        ),
        migrations.AlterField(
            model_name='signal',
            name='strategy',
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AlterField(
            model_name='signal',
            name='symbol',
            field=models.CharField(blank=True, max_length=30),
        ),
    ]
