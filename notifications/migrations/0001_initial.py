import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('preferences', '0001_initial'),
        ('trading', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='Channel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('kind', models.CharField(choices=[('telegram', 'Telegram'), ('discord', 'Discord'), ('email', 'E-mail')], max_length=10)),
                ('enabled', models.BooleanField(default=True)),
                ('telegram_bot_token', models.CharField(blank=True, help_text='From @BotFather, e.g. 123456:ABC-DEF…; kept secret.', max_length=100)),
                ('telegram_chat_id', models.CharField(blank=True, help_text="The chat's id (a group's is negative) or @channelname.", max_length=64)),
                ('discord_webhook_url', models.URLField(blank=True, help_text='Channel settings → Integrations → Webhooks → Copy URL; kept secret.', max_length=500)),
                ('email_to', models.TextField(blank=True, help_text='Addresses, separated by commas or new lines.')),
                ('on_fill', models.BooleanField(default=True, verbose_name='fills')),
                ('on_refusal', models.BooleanField(default=True, verbose_name='refusals (rejected, skipped)')),
                ('on_failure', models.BooleanField(default=True, verbose_name='failures')),
                ('on_protection', models.BooleanField(default=True, verbose_name='protection alarms')),
                ('on_halt', models.BooleanField(default=True, verbose_name='halts')),
                ('on_limit', models.BooleanField(default=True, verbose_name='limit hits')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('strategy', models.ForeignKey(blank=True, help_text="Only this strategy's events (and account-wide ones such as a halt of everything). Empty: every strategy's.", null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notification_channels', to='preferences.strategypreference')),
            ],
            options={
                'ordering': ['name', 'id'],
            },
        ),
        migrations.CreateModel(
            name='Notification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event_type', models.CharField(choices=[('fill', 'Fill'), ('refusal', 'Refusal (rejected or skipped)'), ('failure', 'Failure'), ('protection', 'Protection alarm'), ('halt', 'Halt'), ('limit', 'Limit hit')], max_length=12)),
                ('text', models.TextField()),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed (gave up)')], default='pending', max_length=8)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('last_error', models.TextField(blank=True)),
                ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('claimed_at', models.DateTimeField(blank=True, null=True)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('channel', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='notifications.channel')),
                ('execution', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='notifications', to='trading.execution')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='channel',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['telegram', 'discord', 'email'])), name='channel_kind_valid'),
        ),
        migrations.AddIndex(
            model_name='notification',
            index=models.Index(fields=['status', 'next_attempt_at'], name='notification_due'),
        ),
        migrations.AddConstraint(
            model_name='notification',
            constraint=models.UniqueConstraint(condition=models.Q(('execution__isnull', False)), fields=('execution', 'channel', 'event_type'), name='notification_once_per_execution'),
        ),
    ]
