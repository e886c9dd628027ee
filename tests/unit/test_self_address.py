"""Which provider URLs are the gateway's own listening address (accounts/self_address.py), the admin's warning,
and the hop header's rules (proxy/hop.py)."""

import socket

import pytest
from django.urls import reverse

from accounts.models import Provider
from accounts.self_address import environment_problems, is_self
from proxy import hop
from proxy.errors import LoopDetected


@pytest.mark.parametrize(
    "url, host, port, expected",
    [
        ("http://127.0.0.1:8000", "127.0.0.1", 8000, True),  # the ANTHROPIC_BASE_URL
        ("http://localhost:8000/v1", "127.0.0.1", 8000, True),  # the vLLM preset's default URL
        ("http://[::1]:8000", "127.0.0.1", 8000, True),
        ("http://127.0.0.2:8000", "::1", 8000, True),
        ("http://0.0.0.0:8000", "127.0.0.1", 8000, True),
        ("http://127.0.0.1:8001", "127.0.0.1", 8000, False),  # another port: another server
        ("http://localhost/v1", "127.0.0.1", 80, True),  # the scheme's port
        ("https://localhost/v1", "127.0.0.1", 80, False),
        ("http://10.1.2.3:8000", "0.0.0.0", 8000, False),  # no DNS, no interface list: not known to be us
        ("http://10.1.2.3:8000", "10.1.2.3", 8000, True),
        ("http://127.0.0.1:8000", "10.1.2.3", 8000, False),  # listening elsewhere: loopback does not reach it
        (f"http://{socket.gethostname()}:8000", "0.0.0.0", 8000, True),
        ("https://api.anthropic.com", "0.0.0.0", 443, False),
        ("http://localhost:notaport", "127.0.0.1", 8000, False),
    ],
)
def test_is_self(url, host, port, expected):
    assert is_self(url, host, port) is expected


def test_environment_problems_name_each_looping_provider(settings):
    settings.HOST, settings.PORT = "127.0.0.1", 8000
    document = {"providers": [{"name": "anthropic", "base_url": "http://127.0.0.1:8000"},
                              {"name": "openai", "base_url": "https://api.openai.com/v1"}]}  # fmt: skip
    (problem,) = environment_problems(document)
    assert problem.startswith("provider 'anthropic': base URL http://127.0.0.1:8000 is this gateway's own address")


@pytest.mark.django_db
def test_admin_saves_a_looping_provider_with_a_warning(admin_client, settings):
    settings.HOST, settings.PORT = "127.0.0.1", 8000
    form = {"name": "local-vllm", "preset": "vllm", "kind": "openai", "base_url": "", "connect_timeout": 10,
            "read_timeout": 600, "extra_headers": "{}", "capabilities": "{}", "enabled": "on",
            "accounts-TOTAL_FORMS": 0, "accounts-INITIAL_FORMS": 0, "accounts-MIN_NUM_FORMS": 0,
            "accounts-MAX_NUM_FORMS": 1000}  # fmt: skip
    response = admin_client.post(reverse("admin:accounts_provider_add"), form, follow=True)
    assert response.status_code == 200
    assert Provider.objects.get(name="local-vllm").base_url == "http://localhost:8000/v1"  # the preset's default
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1 and "this gateway's own address (127.0.0.1:8000)" in warnings[0]


def test_hop_check_refuses_only_this_gateway_or_too_long_a_chain():
    own = hop.deployment_id()
    hop.check({})  # no header: served
    hop.check({hop.HEADER: "team-gateway, company-gateway"})
    with pytest.raises(LoopDetected) as caught:
        hop.check({hop.HEADER: f"team-gateway,{own}"})
    assert caught.value.status == 508 and own not in caught.value.message
    with pytest.raises(LoopDetected):
        hop.check({hop.HEADER: ",".join(f"gw{i}" for i in range(hop.MAX_HOPS))})
    assert hop.value({}) == own and hop.value({hop.HEADER: "a, b"}) == f"a, b, {own}"
