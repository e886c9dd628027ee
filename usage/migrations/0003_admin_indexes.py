"""Indexes for the admin's ledger search and filters, and cost_usd added to the (project, created_at) and
(api_key, created_at) indexes so spend sums read the index alone. On PostgreSQL they are built and dropped
CONCURRENTLY, so a large ledger keeps taking writes meanwhile (hence atomic = False; each new index is in place
before the one it replaces goes); elsewhere, plain CREATE / DROP INDEX."""

from django.db import migrations, models


def _online(schema_editor) -> dict:
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


class AddIndexOnline(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, **_online(schema_editor))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, **_online(schema_editor))


class RemoveIndexOnline(migrations.RemoveIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.remove_index(model, index, **_online(schema_editor))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.add_index(model, index, **_online(schema_editor))


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("usage", "0002_policies"),
    ]

    operations = [
        AddIndexOnline(
            model_name="usagerecord",
            index=models.Index(fields=["project", "created_at", "cost_usd"], name="usage_project_created_cost_idx"),
        ),
        RemoveIndexOnline(model_name="usagerecord", name="usage_usage_project_4a57a6_idx"),
        AddIndexOnline(
            model_name="usagerecord",
            index=models.Index(fields=["api_key", "created_at", "cost_usd"], name="usage_key_created_cost_idx"),
        ),
        RemoveIndexOnline(model_name="usagerecord", name="usage_usage_api_key_0a5417_idx"),
        AddIndexOnline(
            model_name="usagerecord",
            index=models.Index(fields=["request_id"], name="usage_request_id_idx"),
        ),
        AddIndexOnline(
            model_name="usagerecord",
            index=models.Index(fields=["outcome", "created_at"], name="usage_outcome_created_idx"),
        ),
        AddIndexOnline(
            model_name="usagerecord",
            index=models.Index(fields=["alias", "created_at"], name="usage_alias_created_idx"),
        ),
        AddIndexOnline(
            model_name="usagerecord",
            index=models.Index(fields=["provider", "created_at"], name="usage_provider_created_idx"),
        ),
        AddIndexOnline(
            model_name="usagerecord",
            index=models.Index(fields=["ingress_api", "created_at"], name="usage_ingress_created_idx"),
        ),
        AddIndexOnline(
            model_name="usagerecord",
            index=models.Index(fields=["stream", "created_at"], name="usage_stream_created_idx"),
        ),
    ]
