"""Usage pages, mounted at /admin/reports/ by gateway_site/urls.py (the admin's login guards them: usage/views.py)."""

from django.urls import path

from . import bill_views, views

app_name = "usage"
urlpatterns = [
    path("finance/", views.finance_report, name="finance_report"),
    path("bills/", bill_views.bill_drift, name="bill_drift"),  # the providers' bills against the ledger
]
