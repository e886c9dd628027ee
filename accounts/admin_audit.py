"""The audit trail in the admin: read-only for everyone, filtered by source, action, object type and date."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from .models import AuditEvent

SHOWN = 6  # changed fields listed per event in the list


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
    # Who and through what share a column, the object and its type too: the changes get the room (1024 px up).
    list_display = ("created_at", "who", "action", "changed_object", "summary")
    list_filter = ("source", "action", "object_type", "created_at")
    search_fields = ("actor", "object_repr", "=object_id")
    date_hierarchy = "created_at"
    fields = ("created_at", "actor", "user", "source", "action", "object_type", "object_id", "object_repr",
              "changes_table")  # fmt: skip
    readonly_fields = fields
    list_per_page = 100

    @admin.display(description="who", ordering="actor")
    def who(self, obj):
        return format_html('{}<br><span class="gh-quiet">{}</span>', obj.actor, obj.source)

    @admin.display(description="object", ordering="object_type")
    def changed_object(self, obj):
        return format_html('{}<br><span class="gh-quiet">{}</span>', obj.object_repr, obj.object_type)

    @admin.display(description="changes")
    def summary(self, obj):
        """One line per field (the first SHOWN), each value cut at 40 characters; the event's page has them all."""
        items = list(obj.changes.items())
        lines = format_html_join(mark_safe("<br>"), "<b>{}</b>: {} → {}",
                                 ((name, _short(old), _short(new)) for name, (old, new) in items[:SHOWN]))  # fmt: skip
        more = len(items) - SHOWN
        return format_html("{}<br>… and {} more", lines, more) if more > 0 else lines

    @admin.display(description="changes")
    def changes_table(self, obj):
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((name, _short(old, 500), _short(new, 500)) for name, (old, new) in obj.changes.items()))  # fmt: skip
        return format_html("<table><tr><th>field</th><th>before</th><th>after</th></tr>{}</table>", rows)


def _short(value, limit: int = 40) -> str:
    text = "—" if value is None or value == "" else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
