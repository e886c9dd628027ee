"""Prices (editable) and the ledger (read-only for everyone, and cheap to browse however large it grows)."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.safestring import mark_safe

from accounts.models import Provider

from .models import ModelPrice, UsageRecord


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ("model", "input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok",
                    "effective_from", "in_force")  # fmt: skip
    list_filter = ("effective_from",)
    search_fields = ("model",)
    date_hierarchy = "effective_from"
    ordering = ("model", "-effective_from")

    def get_queryset(self, request):
        today = timezone.localdate()
        newer = ModelPrice.objects.filter(
            model=OuterRef("model"), effective_from__gt=OuterRef("effective_from"), effective_from__lte=today
        )
        return super().get_queryset(request).annotate(superseded=Exists(newer))

    @admin.display(description="status")
    def in_force(self, obj):
        if obj.effective_from > timezone.localdate():
            return "scheduled"
        return "superseded" if obj.superseded else mark_safe("<b>current</b>")

    def get_form(self, request, obj=None, **kwargs):
        kwargs["help_texts"] = {
            "effective_from": "Requests on or after this day are charged at these prices, until a later row starts."
        }
        return super().get_form(request, obj, **kwargs)


class LedgerPaginator(Paginator):
    """Counts at most CAP rows with a LIMIT query instead of COUNT(*) over the whole ledger: exact for small
    tables, "CAP rows" (CAP / per_page pages) for large ones. Narrow with the date drill-down or filters."""

    CAP = 10_000

    @cached_property
    def count(self):
        return len(self.object_list.values_list("pk", flat=True)[: self.CAP])


class IngressFilter(admin.SimpleListFilter):
    title = "ingress API"
    parameter_name = "ingress_api"

    def lookups(self, request, model_admin):  # fixed list: DISTINCT over the ledger would scan it all
        return Provider.KIND_CHOICES

    def queryset(self, request, queryset):
        return queryset.filter(ingress_api=self.value()) if self.value() else queryset


class ProviderNameFilter(admin.SimpleListFilter):
    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):  # from the small providers table, not the ledger
        return [(name, name) for name in Provider.objects.values_list("name", flat=True)]

    def queryset(self, request, queryset):
        return queryset.filter(provider=self.value()) if self.value() else queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = ("created_at", "request_id", "project", "key_prefix", "alias", "upstream", "ingress_api", "stream",
                    "http_status", "outcome", "input_tokens", "output_tokens", "cost_usd", "latency_ms")  # fmt: skip
    list_filter = ("outcome", IngressFilter, ProviderNameFilter, "stream", "project")
    list_select_related = ("project", "api_key")
    search_fields = ("=request_id", "alias")
    search_help_text = "An exact request id (the x-request-id response header), or part of a model alias."
    date_hierarchy = "created_at"
    paginator = LedgerPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are COUNT queries over the ledger
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="key", ordering="api_key__prefix")
    def key_prefix(self, obj):
        return obj.api_key.prefix if obj.api_key_id else "—"

    @admin.display(description="upstream")
    def upstream(self, obj):
        if not obj.provider:
            return "—"
        where = f"{obj.provider}/{obj.account}" if obj.account else obj.provider
        return f"{where}:{obj.remote_model}"
