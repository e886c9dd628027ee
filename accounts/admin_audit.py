"""The audit trail in the admin: read-only for everyone, filtered by source, action, object type and date."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from .models import AuditEvent


class ReadOnly:
    """ModelAdmin mixin (first in the bases) for a record nobody edits in the admin: the audit trail, the ledger."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("created_at", "actor", "source", "action", "object_type", "object_repr", "summary")
    list_filter = ("source", "action", "object_type", "created_at")
    search_fields = ("actor", "object_repr", "=object_id")
    date_hierarchy = "created_at"
    fields = ("created_at", "actor", "user", "source", "action", "object_type", "object_id", "object_repr",
              "changes_table")  # fmt: skip
    readonly_fields = fields
    list_per_page = 100

    @admin.display(description="changes")
    def summary(self, obj):
        text = "; ".join(f"{name}: {_short(old)} → {_short(new)}" for name, (old, new) in obj.changes.items())
        return text[:200] + ("…" if len(text) > 200 else "")

    @admin.display(description="changes")
    def changes_table(self, obj):
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((name, _short(old, 500), _short(new, 500)) for name, (old, new) in obj.changes.items()))  # fmt: skip
        return format_html("<table><tr><th>field</th><th>before</th><th>after</th></tr>{}</table>", rows)


def _short(value, limit: int = 40) -> str:
    text = "—" if value is None or value == "" else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
