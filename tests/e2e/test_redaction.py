"""Redaction through the real server (proxy/redact.py): what the fake upstream received proves a secret was masked
before it left, the same secret maps to the same placeholder, signed thinking goes through byte for byte, and a
block rule refuses the request with a 400 in each ingress format (Anthropic SDK, OpenAI SDK chat, Responses)
that names the rule and never echoes the secret; the ledger records the refusal."""

import json

import anthropic
import httpx
import openai
import pytest

from tests.e2e import policy_world as pw
from tests.e2e.optimize_world import marker, upstream_calls
from tests.e2e.test_client_replays import FIXTURES, SKIP_HEADERS

AWS_ID = "AKIA" + "Z3X5C7V9B1N3M5Q7"  # made up, in an AWS access key's shape
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "9kL2mN4pQ6"


def key_with(**redaction) -> str:
    from accounts.models import ProjectRedaction

    project = pw.project()
    ProjectRedaction.objects.create(project=project, **redaction)
    return pw.key(project)


def claude(world, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=world.url, api_key=secret, max_retries=0)


def gpt(world, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=world.url + "/v1", api_key=secret, max_retries=0)


def test_a_secret_is_masked_before_the_upstream_and_keeps_its_placeholder(world, committed, ledger):
    secret, mark = key_with(secrets="mask"), marker()
    client = claude(world, secret)
    raw = client.messages.with_raw_response.create(
        model="gw-anthropic", max_tokens=64,
        system=[{"type": "text", "text": f"deploy with {AWS_ID}", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": f"SAY: ok {mark} key {AWS_ID} and again {AWS_ID}"}],
    )  # fmt: skip
    assert raw.parse().content[0].text.startswith("ok")
    assert raw.headers["x-gateway-redaction"] == "aws_access_key=mask"
    (sent,) = upstream_calls(world.fake, mark)
    text = json.dumps(sent["body"])
    assert AWS_ID not in text
    said = sent["body"]["messages"][0]["content"]
    placeholders = [w for w in said.split() if w.startswith("[REDACTED:aws_access_key:")]
    assert len(placeholders) == 2 and placeholders[0] == placeholders[1]
    assert placeholders[0] in sent["body"]["system"][0]["text"]  # the same secret, the same mask, everywhere
    assert sent["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert ledger(raw.headers["request-id"]).http_status == 200


def test_signed_thinking_reaches_the_upstream_byte_for_byte_while_the_tool_result_is_masked(world, committed):
    secret, mark = key_with(secrets="mask"), marker()
    recorded = json.loads((FIXTURES / "claude-code/messages-tool-result-turn.json").read_text())
    body = recorded["body"]
    body["model"] = "gw-anthropic"
    last = body["messages"][-1]["content"]
    result = next(block for block in last if block.get("type") == "tool_result")
    result["content"] = f"{result['content']}\naws_secret_access_key = {AWS_SECRET}"
    last.append({"type": "text", "text": f"SAY: done {mark}"})
    headers = {k: v for k, v in recorded["headers"].items() if k.lower() not in SKIP_HEADERS}
    headers["authorization"] = f"Bearer {secret}"
    url = world.url + recorded["path"] + (f"?{recorded['query']}" if recorded.get("query") else "")
    response = httpx.post(url, headers=headers, content=json.dumps(body).encode(), timeout=30)
    assert response.status_code == 200, response.text
    (sent,) = upstream_calls(world.fake, mark)
    upstream = sent["body"]["messages"]
    assert [m for m in upstream if m["role"] == "assistant"] == [m for m in body["messages"] if m["role"] == "assistant"]
    assert any(b.get("type") == "thinking" and b.get("signature") for m in upstream if m["role"] == "assistant"
               for b in m["content"])  # fmt: skip
    assert AWS_SECRET not in json.dumps(sent["body"]) and "[REDACTED:aws_secret_key:" in json.dumps(upstream[-1])


@pytest.mark.parametrize("ingress", ["anthropic", "chat", "responses"])
def test_a_block_rule_refuses_with_a_400_in_the_callers_format(world, committed, ledger, ingress):
    secret, mark = key_with(secrets="block"), marker()
    prompt = f"SAY: never {mark} {AWS_ID}"
    with pytest.raises((anthropic.BadRequestError, openai.BadRequestError)) as raised:
        if ingress == "anthropic":
            claude(world, secret).messages.create(
                model="gw-anthropic", max_tokens=64, messages=[{"role": "user", "content": prompt}]
            )
        elif ingress == "chat":
            gpt(world, secret).chat.completions.create(
                model="gw-openai", messages=[{"role": "user", "content": prompt}]
            )
        else:
            gpt(world, secret).responses.create(model="gw-openai", input=[{"role": "user", "content": prompt}])
    err = raised.value
    assert err.status_code == 400
    body = err.response.text
    assert AWS_ID not in body and "aws_access_key" in body and "redaction" in body
    assert upstream_calls(world.fake, mark) == []  # nothing left for the upstream
    row = ledger(err.response.headers["request-id" if ingress == "anthropic" else "x-request-id"])
    assert (row.http_status, row.attempts, row.error_type) == (400, 0, "invalid_request")
    assert "aws_access_key" in row.error_message
    assert AWS_ID not in row.error_message


def test_log_only_sends_the_text_unchanged_and_says_so(world, committed):
    secret, mark = key_with(pii="log"), marker()
    raw = gpt(world, secret).chat.completions.with_raw_response.create(
        model="gw-openai", messages=[{"role": "user", "content": f"SAY: hi {mark} mail ada@example.com"}]
    )
    assert raw.headers["x-gateway-redaction"] == "email=log"
    (sent,) = upstream_calls(world.fake, mark)
    assert "ada@example.com" in json.dumps(sent["body"])


def test_the_management_api_reads_and_changes_a_projects_rules_with_the_same_checks(world, committed):
    from accounts.api_tokens import token_create

    token = token_create(name=pw.unique("redact"), scope="write")[1]
    manage = httpx.Client(base_url=world.url + "/manage/v1", headers={"authorization": f"Bearer {token}"}, timeout=30)
    slug = pw.unique("red")
    created = manage.post("/projects", json={"slug": slug, "name": slug})
    assert created.status_code == 201 and created.json()["redaction"] == {"secrets": "off", "pii": "off", "rules": {}}
    rules = {"secrets": "mask", "pii": "log", "rules": {"card_number": "block"}}
    changed = manage.patch(f"/projects/{slug}", json={"redaction": rules})
    assert changed.status_code == 200 and changed.json()["redaction"] == rules
    assert manage.get(f"/projects/{slug}").json()["redaction"] == rules
    refused = manage.patch(f"/projects/{slug}", json={"redaction": {"secrets": "hide", "rules": {"jwts": "mask"}}})
    assert refused.status_code == 422
    problems = " ".join(refused.json()["error"]["problems"])
    assert "redaction.secrets" in problems and "unknown rule 'jwts'" in problems
    assert manage.get(f"/projects/{slug}").json()["redaction"] == rules  # a refused change changes nothing
