from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    """Orders record the stamp they were sent with and how much of their fill the position holds;
    symbol settings are kept per exchange account; slippage fits any price."""

    dependencies = [("trading", "0002_schedules")]

    operations = [
        migrations.RemoveConstraint(model_name="symbolsetting", name="symbol_setting_once"),
        migrations.RenameField(model_name="symbolsetting", old_name="exchange", new_name="account"),
        migrations.AlterField(
            model_name="symbolsetting",
            name="account",
            field=models.CharField(help_text="The exchange account (testnet and production differ).", max_length=64),
        ),
        migrations.AddConstraint(
            model_name="symbolsetting",
            constraint=models.UniqueConstraint(fields=("account", "symbol"), name="symbol_setting_once"),
        ),
        migrations.AddField(
            model_name="order",
            name="sent_stamp",
            field=models.BigIntegerField(
                blank=True, null=True, help_text="The timestamp (exchange clock, ms) the last request for this order carried."
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="applied_qty",
            field=models.DecimalField(
                decimal_places=10, default=Decimal("0"), max_digits=28,
                help_text="How much of executed_qty is folded into the Position mirror.",
            ),
        ),
        # Orders recorded before this migration were folded in whole when they were recorded.
        migrations.RunSQL("UPDATE trading_order SET applied_qty = executed_qty", migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="execution",
            name="slippage_bps",
            field=models.DecimalField(blank=True, decimal_places=4, max_digits=20, null=True),
        ),
        migrations.AlterField(
            model_name="symbollane",
            name="holder",
            field=models.CharField(blank=True, help_text="host:pid:token of the worker holding it.", max_length=100),
        ),
    ]
