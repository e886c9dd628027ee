"""Smart routing through the real server: the rule's alias serves the request, the answer names the model the
client asked for, X-Gateway-Route says which alias and rule, and the ledger records the rule."""

import json

import httpx

from tests.e2e.optimize_world import key_with, marker, upstream_calls
from tests.e2e.test_client_replays import FIXTURES


def test_claude_codes_background_call_goes_to_the_cheap_model(world, committed, ledger):
    secret, mark = key_with(route_background="gw-openai", route_default="gw-anthropic"), marker()
    body = json.loads((FIXTURES / "claude-code/messages-subagent-haiku.json").read_text())["body"]
    body["messages"][-1]["content"].append({"type": "text", "text": f"SAY: small {mark}"})
    body["stream"] = False
    response = httpx.post(f"{world.url}/v1/messages", json=body, timeout=30,
                          headers={"x-api-key": secret, "anthropic-version": "2023-06-01"})  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-route"] == "gw-openai; rule=background"
    assert response.json()["model"] == body["model"]  # the client still sees the model it asked for
    (upstream,) = upstream_calls(world.fake, mark)
    assert upstream["path"] == "/v1/chat/completions" and upstream["body"]["model"] == "fake-gpt"
    row = ledger(response.headers["request-id"])
    assert (row.route_rule, row.alias, row.remote_model) == ("background", "gw-openai", "fake-gpt")


def test_complex_prompts_go_to_the_strong_model_and_the_rest_to_the_default(world, committed, ledger):
    secret = key_with(route_complex="gw-anthropic", complexity_threshold=4, route_default="gw-openai")
    client_headers = {"authorization": f"Bearer {secret}"}

    def ask(text):
        return httpx.post(f"{world.url}/v1/chat/completions", headers=client_headers, timeout=30,
                          json={"model": "anything", "messages": [{"role": "user", "content": text}]})  # fmt: skip

    hard = ask(f"SAY: ok {marker()} Plan the security review and the database migration of api/auth.py")
    easy = ask(f"SAY: ok {marker()} rename x")
    assert hard.headers["x-gateway-route"] == "gw-anthropic; rule=complex"
    assert easy.headers["x-gateway-route"] == "gw-openai; rule=default"
    assert ledger(hard.headers["x-request-id"]).remote_model == "fake-claude"
    assert ledger(easy.headers["x-request-id"]).route_rule == "default"


def test_thinking_and_long_context_scenarios(world, committed):
    secret = key_with(route_think="gw-anthropic", route_long_context="gw-openai", long_context_tokens=2000)
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    base = {"model": "gw-openai", "max_tokens": 2000, "messages": [{"role": "user", "content": "SAY: hi"}]}
    thinking = httpx.post(f"{world.url}/v1/messages", headers=headers, timeout=30,
                          json={**base, "thinking": {"type": "enabled", "budget_tokens": 1024}})  # fmt: skip
    long = httpx.post(f"{world.url}/v1/messages", headers=headers, timeout=30,
                      json={**base, "messages": [{"role": "user", "content": "SAY: hi " + "word " * 3000}]})  # fmt: skip
    plain = httpx.post(f"{world.url}/v1/messages", headers=headers, json=base, timeout=30)
    assert thinking.headers["x-gateway-route"] == "gw-anthropic; rule=think"
    assert long.headers["x-gateway-route"] == "gw-openai; rule=long_context"
    assert plain.status_code == 200 and "x-gateway-route" not in plain.headers


def test_a_rule_may_not_reach_a_model_the_key_may_not_use(world, committed):
    from accounts.models import ProjectOptimization
    from tests.e2e import policy_world as pw

    project = pw.project(allowed_models="gw-openai")
    ProjectOptimization.objects.create(project=project, route_default="gw-anthropic")
    response = httpx.post(f"{world.url}/v1/chat/completions", headers={"authorization": f"Bearer {pw.key(project)}"},
                          json={"model": "gw-openai", "messages": [{"role": "user", "content": "hi"}]}, timeout=30)  # fmt: skip
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
