"""Redaction rules (proxy/redact.py): each rule's true and false positives, the secret rules over every recorded
client session (none may fire), the request step in each caller format (what it masks, what it never touches,
how it blocks), stored copies, and the project setting as the config file and the key snapshot carry it."""

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from prometheus_client import REGISTRY

from accounts.models import REDACTION_RULES, ProjectRedaction, Redaction
from bench import replay_savings
from proxy import formats, redact
from proxy.errors import InvalidRequest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SECRETS, PII = REDACTION_RULES["secrets"], REDACTION_RULES["pii"]
ALL = tuple(redact.RULES)

# Made-up credentials in each provider's shape (none is real).
ANTHROPIC = "sk-ant-api03-" + "Xq7vB2mK9pL4wR8tY1uI5oP3aS6dF0gH" * 3 + "AA"
OPENAI = "sk-proj-" + "T3BlbkFJ9xQ2mN7vB4cX1zL8kJ5hG6fD3sA0pO9iU2yT7rE4wQ1" * 2
OPENAI_LEGACY = "sk-" + "aB3dE5fG7hJ9kL1mN2pQ" + "T3BlbkFJ" + "4rS6tU8vW0xY2zA4bC6d"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GITHUB_PAT = "github_pat_11ABCDEFG0" + "x1Y2z3A4b5C6d7E8f9G0h1I2j3K4l5M6n7O8p9Q0r1S2t3U4v5W6x7Y8z9A0b1C2d3E4f5G6h7I8j9K0"
GATEHOUSE = "gh_" + ("Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa" * 2)[:48]  # accounts.keys.key_generate's shape
SLACK = "xoxb-" + "1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE = "sk_live_" + "51HqX2bK9LmN3pQ7rS5tU8vW0xY"
GOOGLE = "AIza" + "SyD3mK9pL4wR8tY1uI5oP3aS6dF0gH2jK4l"
AWS_ID = "AKIA" + "Z3X5C7V9B1N3M5Q7"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "9kL2mN4pQ6"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9."
       + "dQw4w9WgXcQ3kLmN7pR2sT5vY8zB1cF4hJ6kM9nP0qS")  # fmt: skip
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7yQ3kLmN7pR2sT5vY8zB1cF4hJ6kM9nP0qSdQw4w9WgXcQ3kLmN\n"
       "7pR2sT5vY8zB1cF4hJ6kM9nP0qSdQw4w9WgXcQ3kLmN7pR2sT5vY8zB1cF4hJ6kM9\n-----END RSA PRIVATE KEY-----")  # fmt: skip
CARD = "4111 1111 1111 1111"  # a Visa test number: valid Luhn

TRUE_POSITIVES = [
    ("private_key", f"here is my key:\n{PEM}\nthanks", PEM),
    ("private_key", '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7'
                    'VJTUt9Us8cKjMzEfYyjiWA4R4\\n-----END PRIVATE KEY-----\\n"}', None),
    ("anthropic_key", f"export ANTHROPIC_API_KEY={ANTHROPIC}", ANTHROPIC),
    ("openai_key", f"client = OpenAI(api_key='{OPENAI}')", OPENAI[len("sk-proj-"):]),
    ("openai_key", f"OPENAI_API_KEY={OPENAI_LEGACY} ", OPENAI_LEGACY[3:]),
    ("openai_key", "DEEPSEEK_API_KEY=sk-" + "0f1e2d3c4b5a69788796a5b4c3d2e1f0", None),
    ("github_token", f"git clone https://x-access-token:{GITHUB}@github.com/o/r", GITHUB),
    ("github_token", f"GH_TOKEN={GITHUB_PAT}", GITHUB_PAT),
    ("gatehouse_key", f"ANTHROPIC_AUTH_TOKEN={GATEHOUSE}", GATEHOUSE),
    ("slack_token", f"SLACK_BOT_TOKEN={SLACK}", SLACK),
    ("slack_token", "post to https://hooks.slack.com/services/T0000AAAA/B0000BBBB/" + "XyZ123abcDEF456ghiJKL789", None),
    ("stripe_key", f"stripe.api_key = \"{STRIPE}\"", STRIPE),
    ("google_api_key", f"?key={GOOGLE}&q=x", GOOGLE),
    ("aws_access_key", f"aws_access_key_id = {AWS_ID}", AWS_ID),
    ("aws_secret_key", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    ("aws_secret_key", f'{{"AWS_SECRET_ACCESS_KEY": "{AWS_SECRET}"}}', AWS_SECRET),
    ("jwt", f"Authorization: Bearer {JWT}", JWT),
    ("url_password", "DATABASE_URL=postgres://app:Tr0ub4dor&3xyz@db.internal:5432/app", "Tr0ub4dor&3xyz"),
    ("url_password", "redis://:s3cr3tPassw0rd@cache:6379/0", "s3cr3tPassw0rd"),
    ("generic_secret", "DJANGO_SECRET_KEY=9f8e7d6c5b4a3928x1y2z3w4v5u6", "9f8e7d6c5b4a3928x1y2z3w4v5u6"),
    ("generic_secret", '{"client_secret": "Gx7kP2mQ9vL4rT8w"}', "Gx7kP2mQ9vL4rT8w"),
    ("generic_secret", "password: Hq8$zN2!pW5@kR7x", "Hq8$zN2!pW5@kR7x"),
    ("generic_secret", "curl -H 'Authorization: Bearer 7fQ2xK9mL4pR8vT1wZ6y'", "7fQ2xK9mL4pR8vT1wZ6y"),
    ("email", "mail ada.lovelace+ai@example.co.uk today", "ada.lovelace+ai@example.co.uk"),
    ("phone", "call +44 20 7946 0958 or", "+44 20 7946 0958"),
    ("phone", "call (415) 555-0123 now", "(415) 555-0123"),
    ("phone", "call 415-555-0123 now", "415-555-0123"),
    ("card_number", f"card {CARD} exp 12/29", CARD),
    ("card_number", "amex 378282246310005.", "378282246310005"),
]

FALSE_POSITIVES = [
    ("openai_key", "pip install scikit-learn; sk-ecdsa-sha2-nistp256-cert-v01@openssh.com; task-runner-configuration"),
    ("openai_key", "sk-some-long-kebab-case-identifier-name"),
    ("private_key", 'if line.startswith("-----BEGIN RSA PRIVATE KEY-----"):'),
    ("aws_access_key", "AKIAISHORT and SOMETHINGAKIA1234567890123456XYZ"),
    ("jwt", "eyJust a word"),
    ("url_password", "see https://github.com/o/r and postgres://user:${DB_PASSWORD}@db/app, redis://u:password@h"),
    ("generic_secret", "api_key = os.environ['OPENAI_API_KEY']; token = settings.GATEWAY_KEY_PEPPER"),
    ("generic_secret", "max_tokens: 64000, input_tokens=1234567890123, token_count = 12"),
    ("generic_secret", "auth_token = base64.b64encode(value); secret_file = /run/secrets/db_password_2024"),
    ("generic_secret", "PASSWORD=hunter2 and key: value and key=MY_SECRET_TOKEN_V2"),
    ("generic_secret", 'ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # token alphabet'),
    ("generic_secret", "key = id_GostR3410_2001; public_key: X448PublicKey; BETA_TOKEN = 'oauth-2025-04-20'"),
    ("generic_secret", 'auth = "urn:ietf:params:oauth:token-type:saml2”; keyword=ngettext_lazy:1'),
    ("email", "git@github.com:owner/repo.git and @anthropic-ai/claude-code and user@localhost"),
    ("phone", "version 1.2.3-4567, 2025-01-15, 10.0.0.1, i+1000000, 192.168.100.200"),
    ("card_number", "order 4111 1111 1111 1112 (bad check digit), timestamp 1733616000000, 2025-01-15"),
]


def ruleset(rules=ALL, action="mask", salt=b"salt"):
    return redact.RuleSet("test", tuple((redact.RULES[r], action) for r in rules), salt)


def findings(rule: str, text: str) -> list:
    return redact.RULES[rule].spans(redact.View(text))


def test_the_rules_are_the_ones_the_project_setting_names():
    assert list(redact.RULES) == [*SECRETS, *PII]


@pytest.mark.parametrize("rule,text,secret", TRUE_POSITIVES, ids=[f"{r}-{i}" for i, (r, *_) in enumerate(TRUE_POSITIVES)])
def test_each_rule_finds_its_secret_and_the_mask_hides_it(rule, text, secret):
    spans = findings(rule, text)
    assert spans, f"{rule} found nothing in {text!r}"
    if secret is not None:
        assert [s for _, _, s in spans] == [secret]
    masked = ruleset([rule]).apply(text, found := {})
    assert f"[REDACTED:{rule}:" in masked and (secret is None or secret not in masked)
    assert found == {(rule, "mask"): 1}


@pytest.mark.parametrize("rule,text", FALSE_POSITIVES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(FALSE_POSITIVES)])
def test_each_rule_leaves_lookalikes_alone(rule, text):
    assert findings(rule, text) == []


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for name, item in value.items():
            if name not in redact.OPAQUE_KEYS:
                yield from strings(item)


def recorded_texts() -> list[str]:
    """Every string of every recorded client request (captures and whole sessions, as sent)."""
    texts = [s for path in sorted(FIXTURES.rglob("*.json")) for s in strings(json.loads(path.read_text()))]
    for build in replay_savings.SESSIONS.values():
        texts += [s for _fmt, body in build() for s in strings(body)]
    return texts


def test_secret_rules_fire_nowhere_in_the_recorded_sessions():
    texts = recorded_texts()
    assert sum(map(len, texts)) > 5_000_000  # every capture and session was read
    fired = {rule: sum(len(findings(rule, t)) for t in texts) for rule in SECRETS}
    assert fired == dict.fromkeys(SECRETS, 0)
    pii = {rule: sum(len(findings(rule, t)) for t in texts) for rule in PII}
    assert (pii["phone"], pii["card_number"]) == (0, 0)
    # The e-mail rule finds e-mail addresses only: Claude Code's commit trailer and the sanitized captures' own
    # (the sanitizer swapped each word of a real address for filler: "laborum@cupidatat.non").
    emails = {s for t in texts for _, _, s in findings("email", t)}
    assert "noreply@anthropic.com" in emails and all(re.fullmatch(r"[a-z]+@[a-z]+\.[a-z]+", e) for e in emails)


def test_the_same_secret_always_gets_the_same_placeholder_and_another_project_another():
    text = f"key {AWS_ID}, again {AWS_ID}, other AKIA{'Q' * 16}"
    masked = ruleset().apply(text, {})
    first, second, other = masked.split(", ")
    assert first[4:] == second[6:] and first[4:] != other[6:]
    assert ruleset().apply(text, {}) == masked  # a later turn: byte-identical
    assert ruleset(salt=b"another project").apply(text, {}) != masked


def test_log_only_counts_and_changes_nothing():
    text = f"token {JWT}"
    found = {}
    assert ruleset(["jwt"], "log").apply(text, found) is text and found == {("jwt", "log"): 1}


def test_a_long_text_seen_again_is_answered_from_memory_with_the_same_findings():
    rules = ruleset()
    text = "lorem ipsum " * 100 + AWS_ID
    first, again = {}, {}
    assert rules.apply(text, first) == rules.apply(str(text), again) and first == again == {("aws_access_key", "mask"): 1}
    with pytest.raises(redact.Blocked):
        ruleset(["aws_access_key"], "block").apply(text, {})


# --- the request step, in each caller format ---------------------------------------------------------------------


def call_with(**actions):
    view = Redaction(tuple(actions.items()))
    return SimpleNamespace(key=SimpleNamespace(redact=view, project_id=7, project_slug="unit"))


def anthropic_body():
    return {
        "model": "m",
        "system": [{"type": "text", "text": f"deploy key {AWS_ID}", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": f"my key is {ANTHROPIC}"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": f"the user pasted {ANTHROPIC}", "signature": "EqQBCkYIBxgCKkBsig"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3redacted"},
                {"type": "text", "text": "I will not repeat it."},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": ".env"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AKIA" + "A" * 16}},
                {"type": "text", "text": "thanks", "cache_control": {"type": "ephemeral"}}]},
        ],
    }  # fmt: skip


def counter(rule: str, action: str) -> float:
    value = REGISTRY.get_sample_value("gateway_redactions_total", {"project": "unit", "rule": rule, "action": action})
    return value or 0.0


def test_anthropic_body_masked_where_the_user_wrote_and_untouched_where_the_upstream_checks_bytes():
    body, headers = anthropic_body(), {}
    sent = copy.deepcopy(body)
    before = counter("anthropic_key", "mask")
    redact.outbound(call_with(anthropic_key="mask", aws_access_key="mask", aws_secret_key="mask"), body, "anthropic",
                    headers)  # fmt: skip
    text = orjson.dumps(body).decode()
    assert AWS_SECRET not in text and AWS_ID not in body["system"][0]["text"]
    assert body["messages"][0]["content"].startswith("my key is [REDACTED:anthropic_key:")
    assert body["messages"][1] == sent["messages"][1]  # the assistant turn, its signed thinking included
    assert body["messages"][2]["content"][1] == sent["messages"][2]["content"][1]  # image data
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}  # masked inside a cached block, stably
    assert headers[redact.HEADER] == "anthropic_key=mask, aws_access_key=mask, aws_secret_key=mask"
    assert counter("anthropic_key", "mask") == before + 1
    again = anthropic_body()
    redact.outbound(call_with(anthropic_key="mask", aws_access_key="mask", aws_secret_key="mask"), again, "anthropic",
                    {})  # fmt: skip
    assert again == body  # the next turn sends the same bytes: the prompt cache still hits


def test_openai_and_responses_bodies_are_masked_in_user_system_and_tool_text():
    chat = {"model": "m", "messages": [
        {"role": "system", "content": f"use {GITHUB}"},
        {"role": "user", "content": [{"type": "text", "text": f"and {STRIPE}"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": f"token={GOOGLE}"}]}  # fmt: skip
    redact.outbound(call_with(github_token="mask", stripe_key="mask", google_api_key="mask"), chat, "openai", {})
    assert not {GITHUB, STRIPE, GOOGLE} & set(strings(chat)) and "[REDACTED:" in chat["messages"][3]["content"]
    responses = {"model": "m", "instructions": f"jwt {JWT}", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"card {CARD}"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": f"gAAAA{JWT}"},
        {"type": "function_call_output", "call_id": "c1", "output": f"email ada@example.com {JWT}"}]}  # fmt: skip
    redact.outbound(call_with(jwt="mask", card_number="mask", email="mask"), responses, "responses", {})
    assert responses["input"][1]["encrypted_content"] == f"gAAAA{JWT}"
    assert JWT not in responses["instructions"] and CARD not in str(responses["input"][0])
    assert "ada@example.com" not in responses["input"][2]["output"]


@pytest.mark.parametrize("fmt", ["anthropic", "openai", "responses"])
def test_a_block_rule_refuses_with_a_400_naming_the_rule_and_never_the_secret(fmt):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": f"{AWS_ID}"}]}
    if fmt == "responses":
        body = {"model": "m", "input": [{"role": "user", "content": "hi"}, {"role": "user", "content": AWS_ID}]}
    with pytest.raises(InvalidRequest) as raised:
        redact.outbound(call_with(aws_access_key="block"), body, fmt, {})
    err = raised.value
    status, rendered, _ = formats.get(fmt).render_error(err)
    assert status == 400 and AWS_ID not in rendered.decode() and AWS_ID not in err.message
    assert "aws_access_key" in err.message and err.param == ("input[1]" if fmt == "responses" else "messages[1]")


# --- stored copies ------------------------------------------------------------------------------------------------


def test_a_stored_copy_masks_every_rule_that_is_on_and_keeps_opaque_fields():
    rules = ruleset(["jwt", "generic_secret", "email"], "log")  # log-only rules still mask a stored copy
    answer = {"content": [
        {"type": "thinking", "thinking": f"the token {JWT}", "signature": f"sig{JWT}"},
        {"type": "text", "text": "write to ada@example.com"},
        {"type": "tool_use", "id": "t", "name": "call", "input": {"api_key": "Zq8xW2vN5mK7pL3r", "n": 3}}]}  # fmt: skip
    stored = redact.redact_for_log(rules, answer)
    assert stored["content"][0]["signature"] == f"sig{JWT}" and JWT not in stored["content"][0]["thinking"]
    assert "ada@example.com" not in stored["content"][1]["text"]
    assert stored["content"][2]["input"]["api_key"].startswith("[REDACTED:generic_secret:")
    assert answer["content"][1]["text"] == "write to ada@example.com"  # a copy: the answer itself is unchanged
    assert JWT not in redact.redact_for_log(rules, f"data: {JWT}\n".encode()).decode()
    assert redact.redact_for_log(None, answer) is answer


# --- the project setting --------------------------------------------------------------------------------------


def test_the_view_is_none_when_every_rule_is_off_and_overrides_win_over_the_group():
    assert ProjectRedaction(secrets="off", pii="off", rules={}).view() is None
    view = ProjectRedaction(secrets="mask", pii="off", rules={"jwt": "log", "email": "block"}).view()
    actions = dict(view.actions)
    assert actions["jwt"] == "log" and actions["email"] == "block" and actions["aws_access_key"] == "mask"
    assert "phone" not in actions


@pytest.mark.django_db
def test_the_config_file_sets_the_rules_and_the_key_snapshot_carries_them():
    from accounts import keys
    from accounts.config import ConfigError
    from accounts.services import config_apply

    def project(redaction):
        return {"projects": [{"slug": "team", "name": "Team", "redaction": redaction}]}

    config_apply(project({"secrets": "mask", "rules": {"card_number": "block"}}))
    row = ProjectRedaction.objects.get(project__slug="team")
    assert (row.secrets, row.pii, row.rules) == ("mask", "off", {"card_number": "block"})
    key, _ = keys.key_create(project=row.project, name="k")
    assert dict(keys.key_by_id(key.id).redact.actions)["card_number"] == "block"
    with pytest.raises(ConfigError) as bad:
        config_apply(project({"secrets": "hide", "rules": {"jwts": "mask"}}))
    problems = " ".join(bad.value.problems)
    assert "projects[0].redaction.secrets" in problems and "projects[0].redaction.rules" in problems
    assert "unknown rule 'jwts'" in problems
    config_apply(project({}))  # absent fields go back to off
    assert keys.key_by_id(key.id).redact is None
