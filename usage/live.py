"""The admin's live request feed page (/admin/usage/usagerecord/live/, linked from the usage records list).

The page holds no data of its own: it opens the websocket in usage/consumers.py and prepends each finished
request it is sent (usage/feed.py). Same permission as the ledger list: staff who may view usage records.
"""

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

MAX_ROWS = 200  # the page keeps the newest rows only; the ledger has them all


def live_view(model_admin):
    def view(request):
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        context = {
            **model_admin.admin_site.each_context(request),
            "title": "Live requests",
            "opts": model_admin.model._meta,
            "max_rows": MAX_ROWS,
        }
        return TemplateResponse(request, "usage/live.html", context)

    return view
