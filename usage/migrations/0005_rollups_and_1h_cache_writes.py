# Daily rollups (usage.services.rollup_day) and the one-hour share of cache writes (usage.pricing).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_provider_kind_openai_responses'),
        ('usage', '0004_ledger_fields_for_batches_cache_and_reports'),
    ]

    operations = [
        migrations.AlterField(
            model_name='usagerecord',
            name='cache_write_tokens',
            field=models.PositiveIntegerField(default=0, help_text='Every cache-write token (5-minute and 1-hour).'),
        ),
        migrations.AddField(
            model_name='usagerecord',
            name='cache_write_1h_tokens',
            field=models.PositiveIntegerField(default=0, help_text='The part of the cache writes made with a one-hour TTL, when the upstream reports it (usage.pricing).', verbose_name='1-hour cache write tokens'),
        ),
        migrations.CreateModel(
            name='RolledDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField(unique=True)),
                ('rolled_at', models.DateTimeField(blank=True, null=True)),
                ('rows', models.PositiveBigIntegerField(default=0)),
                ('cost_usd', models.DecimalField(decimal_places=8, default=0, max_digits=18)),
            ],
            options={
                'ordering': ['-day'],
            },
        ),
        migrations.CreateModel(
            name='DailyRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('alias', models.CharField(blank=True, max_length=200)),
                ('model', models.CharField(blank=True, help_text='The upstream model that was priced.', max_length=200)),
                ('provider', models.CharField(blank=True, max_length=100)),
                ('requests', models.PositiveIntegerField(default=0)),
                ('ok', models.PositiveIntegerField(default=0)),
                ('client_errors', models.PositiveIntegerField(default=0)),
                ('upstream_errors', models.PositiveIntegerField(default=0)),
                ('rate_limited', models.PositiveIntegerField(default=0)),
                ('budget_exceeded', models.PositiveIntegerField(default=0)),
                ('cancelled', models.PositiveIntegerField(default=0)),
                ('interrupted', models.PositiveIntegerField(default=0)),
                ('cache_hits', models.PositiveIntegerField(default=0)),
                ('input_tokens', models.BigIntegerField(default=0)),
                ('output_tokens', models.BigIntegerField(default=0)),
                ('cache_read_tokens', models.BigIntegerField(default=0)),
                ('cache_write_tokens', models.BigIntegerField(default=0)),
                ('cost_usd', models.DecimalField(decimal_places=8, default=0, max_digits=18)),
                ('saved_usd', models.DecimalField(decimal_places=8, default=0, max_digits=18)),
                ('latency_p50_ms', models.PositiveIntegerField(default=0)),
                ('latency_p95_ms', models.PositiveIntegerField(default=0)),
                ('ttft_p50_ms', models.PositiveIntegerField(blank=True, null=True)),
                ('api_key', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.apikey')),
                ('project', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.project')),
            ],
            options={
                'verbose_name': 'daily rollup',
                'indexes': [models.Index(fields=['day'], name='usage_rollup_day_idx'), models.Index(fields=['project', 'day'], name='usage_rollup_project_day_idx'), models.Index(fields=['api_key', 'day'], name='usage_rollup_key_day_idx')],
            },
        ),
    ]
