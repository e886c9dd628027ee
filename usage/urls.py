"""Usage pages, mounted at /admin/reports/ by gateway_site/urls.py (the admin's login guards them: usage/views.py)."""

from django.urls import path

from . import views

app_name = "usage"
urlpatterns = [
    path("finance/", views.finance_report, name="finance_report"),
]
