"""Readiness means "can serve" (issue 14): /ready is 503 only without the database (tests/e2e/test_ledger.py), a
degraded Redis or ledger is reported in the body (tests/e2e/test_shared_state.py, test_ledger_durability.py) and
in the gateway_dependency_up{dependency} gauge, which each probe keeps current."""

import re

import httpx


def gauges(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics").text
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'gateway_dependency_up\{dependency="(\w+)"\} ([\d.]+)', text)}


def test_ready_sets_the_dependency_gauges(gateway_server):
    ready = httpx.get(gateway_server.url + "/ready")
    assert ready.status_code == 200
    up = gauges(gateway_server.url)
    assert up["database"] == 1 and up["ledger"] == 1
    assert ("redis" in up) == (ready.json()["checks"]["redis"] != "off")


def test_degraded_dependencies_read_zero():
    from prometheus_client import REGISTRY

    from gateway_site.health import _dependency_gauges

    _dependency_gauges({"database": True, "ledger": "degraded", "redis": "degraded"})
    value = lambda name: REGISTRY.get_sample_value("gateway_dependency_up", {"dependency": name})  # noqa: E731
    assert (value("database"), value("ledger"), value("redis")) == (1, 0, 0)
    _dependency_gauges({"database": False, "ledger": "ok", "redis": "ok"})
    assert (value("database"), value("ledger"), value("redis")) == (0, 1, 1)
