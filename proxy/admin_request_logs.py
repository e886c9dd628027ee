"""The request log pages (usage.RequestLog, docs/request-logs.md): find a log, read its conversation.

Here rather than in usage/admin.py because a conversation is read through the caller format's own parser
(proxy/formats: parse_request / parse_response into proxy.canonical), so every ingress renders alike: the
system prompt, each turn's text, tool calls and tool results, thinking collapsed (<details>); the raw JSON is one
click away. Bodies are shown only to users who may read them (usage.request_logs.may_read_bodies); a finance-only
user (the Finance group) sees the metadata. The list reads like the ledger's (usage/admin.py): every filter, alone
or with a date range, walks an index ending in created_at and stops at a page; no COUNT(*) over the table.
"""

import orjson
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin_audit import ReadOnly
from usage import request_logs
from usage.admin import CreatedRangeFilter, LedgerPaginator, RequestColumns
from usage.models import RequestLog
from usage.views import can_view_reports

from . import formats
from .canonical import RedactedThinking, Text, Thinking, ToolResult, ToolUse

STATUSES = [200, 400, 401, 403, 404, 408, 413, 422, 429, 499, 500, 502, 503, 504, 529]


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "http_status"

    def lookups(self, request, model_admin):  # a fixed list: DISTINCT over the logs would read them all
        return [(str(s), str(s)) for s in STATUSES]

    def queryset(self, request, queryset):
        return queryset.filter(http_status=int(self.value())) if (self.value() or "").isdigit() else queryset


class ModelFilter(admin.SimpleListFilter):
    """The model the client asked for, typed or picked from the models routed (the routes table, not the logs)."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        from accounts.models import ModelRoute

        return [(alias, alias) for alias in ModelRoute.objects.values_list("alias", flat=True)[:60]]

    def queryset(self, request, queryset):
        return queryset.filter(model=self.value()) if self.value() else queryset


@admin.register(RequestLog)
class RequestLogAdmin(RequestColumns, ReadOnly, admin.ModelAdmin):
    list_display = ("created_at", "request", "project_key", "model", "api", "outcome_status", "answer", "kept")
    list_filter = (CreatedRangeFilter, "project", "api_key", ModelFilter, StatusFilter)
    list_select_related = ("project", "api_key__project")
    search_fields = ("=request_id",)
    search_help_text = "An exact request id (the request-id / x-request-id response header)."
    paginator = LedgerPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    sortable_by = ("created_at",)
    fields = ("created_at", "request_id", "ledger_row", "project", "api_key", "model", "ingress_api", "stream",
              "http_status", "outcome", "meta_table", "kept")  # fmt: skip
    readonly_fields = fields
    change_form_template = "admin/usage/requestlog/change_form.html"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()  # an exact id, through its index (Django's "=" search is a case-blind LIKE)
        return (queryset.filter(request_id=term) if term else queryset), False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body")  # the list never reads a body

    def has_view_permission(self, request, obj=None):
        return request_logs.may_read_bodies(request.user) or can_view_reports(request.user)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def get_urls(self):
        view = self.admin_site.admin_view(self.by_request_view)
        return [path("by-request/<str:request_id>/", view, name="usage_requestlog_by_request"), *super().get_urls()]

    def by_request_view(self, request, request_id):
        """The log of a request id (links from the ledger row and the live feed); the ledger row if none."""
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        entry = RequestLog.objects.filter(request_id=request_id).only("id").order_by("-created_at").first()
        if entry is not None:
            return HttpResponseRedirect(reverse("admin:usage_requestlog_change", args=[entry.pk]))
        messages.info(request, f"No request log for {request_id}: its project keeps none, or it has expired.")
        return HttpResponseRedirect(reverse("admin:usage_usagerecord_changelist") + f"?q={request_id}")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        entry = RequestLog.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if entry is not None and entry.full:
            if request_logs.may_read_bodies(request.user):
                bodies = request_logs.bodies(entry)
                context["conversation"] = conversation(entry.ingress_api, bodies)
                context["raw_json"] = orjson.dumps(bodies, option=orjson.OPT_INDENT_2).decode()
            else:
                context["bodies_hidden"] = True
        return super().change_view(request, object_id, form_url, context)

    @admin.display(description="answer")
    def answer(self, obj):
        """How the model answered: its stop reason, and the tools it called."""
        tools = ", ".join(obj.meta.get("tool_calls") or [])
        return format_html('{}<br><span class="gh-quiet gh-small">{}</span>', obj.meta.get("stop_reason") or "—", tools)

    @admin.display(description="kept")
    def kept(self, obj):
        if not obj.full:
            return "metadata"
        cut = " (cut to the size cap)" if obj.truncated else ""
        return f"bodies: {obj.body_bytes:,} bytes, {obj.stored_bytes:,} stored{cut}"

    @admin.display(description="ledger row")
    def ledger_row(self, obj):
        url = reverse("admin:usage_usagerecord_changelist") + f"?q={obj.request_id}"
        return format_html('<a href="{}">{}</a>', url, obj.request_id)

    @admin.display(description="metadata")
    def meta_table(self, obj):
        return format_html("<code>{}</code>", orjson.dumps(obj.meta).decode())


# --- the conversation, through the caller format's parser -------------------------------------------------


def conversation(ingress_api: str, bodies: dict | None) -> dict | None:
    """{"system", "tools", "turns", "answer", "stop_reason"} for the template: each turn {"role", "parts"}, each
    part {"kind": text|thinking|tool_call|tool_result|other, "text", "name"}. None when the bodies do not parse
    (a cut log, an odd request): the raw JSON is still shown."""
    if not bodies or "request" not in bodies:
        return None
    fmt = formats.get(ingress_api)
    try:
        chat = fmt.parse_request(bodies["request"])
    except Exception:
        return None
    turns = [{"role": m.role, "parts": [_part(b) for b in m.content]} for m in chat.messages]
    answer, stop = None, None
    response = bodies.get("response")
    if isinstance(response, dict):
        try:
            resp = fmt.parse_response(response, chat)
            answer, stop = {"role": "assistant", "parts": [_part(b) for b in resp.content]}, resp.stop_reason
        except Exception:
            answer = {"role": "answer", "parts": [{"kind": "other", "text": _json(response)}]}
    return {"system": "\n\n".join(t.text for t in chat.system), "tools": [t.name for t in chat.tools],
            "turns": turns, "answer": answer, "stop_reason": stop}  # fmt: skip


def _part(block) -> dict:
    if isinstance(block, Text):
        return {"kind": "text", "text": block.text}
    if isinstance(block, Thinking):
        return {"kind": "thinking", "text": block.thinking}
    if isinstance(block, RedactedThinking):
        return {"kind": "thinking", "text": "(redacted thinking)"}
    if isinstance(block, ToolUse):
        return {"kind": "tool_call", "name": block.name, "text": _json(block.input)}
    if isinstance(block, ToolResult):
        text = "\n".join(getattr(c, "text", f"[{type(c).__name__.lower()}]") for c in block.content)
        return {"kind": "tool_result", "name": block.tool_use_id, "text": text, "error": block.is_error}
    return {"kind": "other", "text": f"[{type(block).__name__.lower()}]"}


def _json(value) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
