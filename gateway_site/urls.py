from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from . import coding_gateway, health
from .api import api
from .manage_api import manage_api
from .login_throttle import ThrottledAdminAuthenticationForm

admin.site.site_header = "Gatehouse"
admin.site.site_title = "Gatehouse admin"
admin.site.index_title = "Gateway administration"
admin.site.login_form = ThrottledAdminAuthenticationForm  # failed logins lock out (gateway_site/login_throttle.py)

urlpatterns = [
    path("", health.root),
    path("health", health.health),
    path("ready", health.ready),
    path("metrics", health.metrics),
    # The Coding Gateway's /admin/* JSON endpoints for API callers; a browser gets the Django admin (the rule is
    # gateway_site/coding_gateway.py's is_api_call; docs/coding-gateway-api.md).
    *coding_gateway.urlpatterns,
    path("admin/reports/", include("usage.urls")),  # the finance report (usage/views.py), behind the admin login
    path("admin/", admin.site.urls),
    # The admin's CSS/JS, collected by bin/run. Daphne serves no files itself; a CDN or proxy may take over.
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATIC_ROOT}),
    path("manage/v1/", manage_api.urls),
    path("", api.urls),
]

handler404 = "gateway_site.health.not_found"
handler500 = "gateway_site.health.server_error"
