"""The audit trail of strategy changes (django-simple-history), starting from a baseline row per
existing strategy so that its first audited change shows a before → after."""

import django.core.validators
import django.db.models.deletion
import simple_history.models
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def record_current_state(apps, schema_editor):
    preference_model = apps.get_model("preferences", "StrategyPreference")
    history_model = apps.get_model("preferences", "HistoricalStrategyPreference")
    copied = [field.attname for field in history_model._meta.fields if not field.name.startswith("history_")]
    now = timezone.now()
    history_model.objects.bulk_create(
        history_model(
            **{name: getattr(preference, name) for name in copied},
            history_date=now, history_type="+", history_change_reason="state when the audit trail began",
        )
        for preference in preference_model.objects.iterator()
    )


class Migration(migrations.Migration):

    dependencies = [
        ('preferences', '0005_protection'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HistoricalStrategyPreference',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('name', models.CharField(db_index=True, help_text="The alert's `strategy` value, exactly.", max_length=100)),
                ('enabled', models.BooleanField(default=True, help_text='Signals of a disabled strategy are recorded, not traded.')),
                ('products', models.JSONField(blank=True, default=list, help_text='Symbols this strategy may trade, e.g. BTCUSDT, ETHUSDT. None: nothing is traded.')),
                ('direction', models.CharField(choices=[('long', 'Long only'), ('short', 'Short only'), ('both', 'Long and short')], default='both', max_length=5)),
                ('leverage', models.PositiveSmallIntegerField(default=1, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(125)])),
                ('margin_type', models.CharField(choices=[('cross', 'Cross'), ('isolated', 'Isolated')], default='cross', max_length=8)),
                ('sizing', models.CharField(choices=[('allocation', 'Allocation of equity'), ('signal', "Signal's quantity")], default='allocation', max_length=10)),
                ('allocation_pct', models.DecimalField(decimal_places=4, default=Decimal('10'), help_text='Percent of account equity per position, before leverage (0 < x ≤ 100).', max_digits=7, validators=[django.core.validators.MinValueValidator(Decimal('0.0001')), django.core.validators.MaxValueValidator(Decimal('100'))], verbose_name='allocation %')),
                ('price_tolerance_pct', models.DecimalField(decimal_places=4, default=Decimal('5'), help_text="An alert's price further than this from the mark price is not trusted: the order is sized at the mark price instead, and the execution says so.", max_digits=7, validators=[django.core.validators.MinValueValidator(Decimal('0.0001')), django.core.validators.MaxValueValidator(Decimal('100'))], verbose_name='price tolerance %')),
                ('stop_loss', models.DecimalField(blank=True, decimal_places=4, help_text="A stop-loss this percent from the entry fill price, placed on the exchange after each entry. Empty or 0: none (an alert's `sl` price still places one).", max_digits=7, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0')), django.core.validators.MaxValueValidator(Decimal('100'))], verbose_name='stop-loss %')),
                ('take_profit', models.DecimalField(blank=True, decimal_places=4, help_text="A take-profit this percent from the entry fill price. Empty or 0: none (an alert's `tp` still places one).", max_digits=8, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0')), django.core.validators.MaxValueValidator(Decimal('1000'))], verbose_name='take-profit %')),
                ('max_daily_loss', models.DecimalField(blank=True, decimal_places=10, help_text="Net realized loss since 00:00 UTC that halts the strategy's opening orders until the next UTC day. Empty: no limit.", max_digits=28, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0.01'))], verbose_name='max daily loss (USDT)')),
                ('max_open_positions', models.PositiveSmallIntegerField(blank=True, help_text="Open positions across the strategy's symbols beyond which no new one is opened. Empty: no limit.", null=True, validators=[django.core.validators.MinValueValidator(1)])),
                ('sync_to_alert', models.BooleanField(default=False, help_text="When an alert says the strategy was flat before it but we hold the position (an exit alert was missed), do not add to it: trade to the alert's stated position rather than the delta.")),
                ('halted_until', models.DateTimeField(blank=True, help_text='Set when the daily loss limit is reached: opening orders are refused until then. Clear it to lift the halt.', null=True)),
                ('max_signal_age', models.PositiveIntegerField(blank=True, help_text='Overrides WEBHOOK_MAX_SIGNAL_AGE for this strategy.', null=True, verbose_name='max signal age (s)')),
                ('notes', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(blank=True, editable=False)),
                ('updated_at', models.DateTimeField(blank=True, editable=False)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'historical strategy preference',
                'verbose_name_plural': 'historical strategy preferences',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.RunPython(record_current_state, migrations.RunPython.noop),
    ]
