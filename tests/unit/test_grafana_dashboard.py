"""The shipped Grafana dashboard only queries series the gateway defines (usage/metrics.py), so a renamed metric
cannot leave an empty panel behind."""

import json
import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from usage import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "gatehouse.json"


def defined_series() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(value._name + "_total")
        elif isinstance(value, (Gauge, Histogram)):
            names.add(value._name)
    return names


def test_every_dashboard_query_names_a_defined_series():
    dashboard = json.loads(DASHBOARD.read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queried |= {re.sub(r"_bucket$", "", name) for name in re.findall(r"gateway_[a-z_]+", target["expr"])}
    assert queried, "no gateway_* query in the dashboard"
    assert queried <= defined_series(), queried - defined_series()
    for needed in ("gateway_requests_total", "gateway_cost_usd_total", "gateway_upstream_errors_total",
                   "gateway_time_to_first_token_seconds", "gateway_active_requests"):  # fmt: skip
        assert needed in queried
