"""Batches in the admin: the list shows each batch's progress (a bar and its counts, counted in the list's one
query), a batch's page lists its items with their errors, and "Cancel" stops selected batches (batches/services.py
does the canceling). Nothing here is editable: batches are made through the API."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Case, When
from django.utils.html import format_html

from . import selectors, services
from .models import Batch, BatchFile, BatchItem


SHOWN_ITEMS = 200


class BatchItemInline(admin.TabularInline):
    model = BatchItem
    fields = ("seq", "custom_id", "status", "status_code", "error_type", "error_message", "request_id",
              "executions", "ended_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    verbose_name_plural = f"items (errors first; the first {SHOWN_ITEMS} shown)"

    def get_queryset(self, request):
        """Errors first (what an operator opens a batch for), at most SHOWN_ITEMS of a batch of up to 100,000."""
        # The URL carries the admin's quoted primary key ("msgbatch_01" is linked as "msgbatch_5F01").
        quoted = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        object_id = unquote(quoted) if quoted else None
        errors_first = Case(When(status="errored", then=0), default=1)
        shown = list(BatchItem.objects.filter(batch_id=object_id).order_by(errors_first, "seq")
                     .values_list("pk", flat=True)[:SHOWN_ITEMS])
        return super().get_queryset(request).filter(pk__in=shown).order_by(errors_first, "seq")


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "kind", "state", "progress", "counts", "created_at", "ended_at")
    list_filter = ("status", "outcome", "kind", "project")
    search_fields = ("id",)
    readonly_fields = [f.name for f in Batch._meta.fields] + ["progress", "counts"]
    fieldsets = [  # what an operator opens a batch for first; then its files, times and the rest
        (None, {"fields": ("id", "project", "api_key", "kind", "status", "outcome", "progress", "counts")}),
        ("Files", {"fields": ("input_file", "output_file", "error_file")}),
        ("Times", {"fields": ("created_at", "in_progress_at", "finalizing_at", "ended_at", "cancel_initiated_at",
                              "expires_at")}),
        ("Details", {"fields": ("ingress_api", "total", "endpoint", "completion_window", "metadata", "errors",
                                "native"), "classes": ("collapse",)}),
    ]  # fmt: skip
    actions = ["cancel_batches"]
    inlines = [BatchItemInline]
    list_select_related = ("project",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(**selectors.counts_annotations())

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def state(self, obj):
        """The status, and how it ended once it has (the two share a column so the list fits 1024 px)."""
        if not obj.outcome:
            return obj.get_status_display()
        return format_html('{}<br><span class="gh-quiet">{}</span>', obj.get_status_display(),
                           obj.get_outcome_display())  # fmt: skip

    @admin.display(description="progress")
    def progress(self, obj):
        done = obj.n_succeeded + obj.n_errored + obj.n_canceled + obj.n_expired
        percent = int(100 * done / obj.total) if obj.total else 100
        return format_html(
            '<progress value="{}" max="100" title="{}%" style="width:6em">{}%</progress> {}%', percent, percent,
            percent, percent)

    @admin.display(description="counts")
    def counts(self, obj):
        return format_html(
            "{} total · {} pending · {} running · <b>{}</b> ok · <b style='color:#ba2121'>{}</b> errored · "
            "{} canceled · {} expired", obj.total, obj.n_pending, obj.n_running, obj.n_succeeded, obj.n_errored,
            obj.n_canceled, obj.n_expired)

    @admin.action(description="Cancel selected batches (running items finish)")
    def cancel_batches(self, request, queryset):
        canceled = 0
        for batch in queryset.filter(status="in_progress"):
            services.cancel(batch)
            canceled += 1
        self.message_user(request, f"{canceled} batch(es) canceled.", messages.SUCCESS)


@admin.register(BatchFile)
class BatchFileAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "purpose", "filename", "bytes", "created_at")
    list_filter = ("purpose", "project")
    search_fields = ("id", "filename")
    readonly_fields = [f.name for f in BatchFile._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
