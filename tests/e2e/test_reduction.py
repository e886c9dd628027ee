"""Token reduction through the real server on real clients' captured requests: what reaches the upstream, the
X-Gateway-Reduction header and the ledger. Claude Code to the Anthropic fake is the pass-through path (the raw
body, never the canonical model); Claude Code to the OpenAI fake and aider to the Anthropic fake are translated."""

import json

from tests.e2e.optimize_world import key_with, marker, upstream_calls
from tests.e2e.test_client_replays import FIXTURES, SKIP_HEADERS

ALL_LAYERS = dict(cache_breakpoints=True, stable_prefix=True, strip_boilerplate=True, dedupe_tool_results=True,
                  cap_tool_result_chars=20_000, prune_max_tokens=200_000, diff_first=True)  # fmt: skip


def send(world, capture: str, secret: str, model: str, mark: str):
    import httpx

    recorded = json.loads((FIXTURES / capture).read_text())
    body = recorded["body"]
    body["model"] = model
    last = [m for m in body["messages"] if m["role"] == "user"][-1]
    content = last["content"]
    if isinstance(content, str):
        last["content"] = f"{content}\n{mark}"
    else:
        content.append({"type": "text", "text": f"SAY: reduced {mark}"})
    headers = {k: v for k, v in recorded["headers"].items() if k.lower() not in SKIP_HEADERS}
    headers["authorization"] = f"Bearer {secret}"
    url = world.url + recorded["path"] + (f"?{recorded['query']}" if recorded.get("query") else "")
    return httpx.post(url, headers=headers, content=json.dumps(body).encode(), timeout=30), body


def test_claude_code_pass_through_with_every_layer(world, committed, ledger):
    secret, mark = key_with(**ALL_LAYERS), marker()
    response, sent = send(world, "claude-code/messages-tool-result-turn.json", secret, "gw-anthropic", mark)
    assert response.status_code == 200, response.text
    layers, saved = response.headers["x-gateway-reduction"].split("; tokens_saved=")
    assert layers == "diff_first,breakpoints" and saved == "0"  # nothing to cut in this short turn
    (upstream,) = upstream_calls(world.fake, mark)
    body = upstream["body"]
    assert body["system"][0]["text"].startswith("x-anthropic-billing-header:")  # Anthropic keeps its own line
    assert "unified diff" in body["system"][-1]["text"]
    assert "cache_control" in body["tools"][-1] and "cache_control" not in sent["tools"][-1]
    marks = sum("cache_control" in b for b in body["system"]) + 1 + sum(
        "cache_control" in b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
    )
    assert marks == 4
    assert body["messages"][:-1] == sent["messages"][:-1]  # the history (signed thinking) goes as the client sent it
    row = ledger(response.headers["request-id"])
    assert row.reductions == "diff_first,breakpoints" and row.outcome == "ok"


def test_claude_code_translated_drops_the_billing_line_and_records_the_saving(world, committed, ledger):
    secret, mark = key_with(stable_prefix=True, strip_boilerplate=True), marker()
    response, _ = send(world, "claude-code/messages-tool-result-turn.json", secret, "claude-sonnet-4-5", mark)
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-reduction"].startswith("stable_prefix;")
    (upstream,) = upstream_calls(world.fake, mark)
    assert upstream["path"] == "/v1/chat/completions"
    assert "x-anthropic-billing-header" not in json.dumps(upstream["body"])
    row = ledger(response.headers["request-id"])
    assert row.reductions == "stable_prefix" and row.tokens_saved > 0 and row.saved_usd > 0


def test_aider_translated_to_anthropic_gets_cache_breakpoints_and_loses_its_closing_reminder(world, committed):
    secret, mark = key_with(cache_breakpoints=True, strip_boilerplate=True), marker()
    response, sent = send(world, "openai-clients/aider-chat.json", secret, "gpt-4o-mini", mark)
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-reduction"].startswith("boilerplate,breakpoints;")
    (upstream,) = upstream_calls(world.fake, mark)
    body = upstream["body"]
    assert upstream["path"] == "/v1/messages"
    assert body["system"][-1].get("cache_control") == {"type": "ephemeral"}
    assert "Reminder" not in json.dumps(body["system"]) and len(body["system"]) == 1
    user_marks = [b for m in body["messages"] if m["role"] == "user" for b in m["content"] if "cache_control" in b]
    assert len(user_marks) == 3 and len(user_marks) + 1 <= 4  # with the system's: Anthropic's limit


def test_without_layers_nothing_changes_and_no_header(world, committed):
    secret, mark = key_with(), marker()  # a settings row with every layer off
    response, sent = send(world, "claude-code/messages-tool-result-turn.json", secret, "gw-anthropic", mark)
    assert response.status_code == 200 and "x-gateway-reduction" not in response.headers
    (upstream,) = upstream_calls(world.fake, mark)
    assert upstream["body"]["messages"] == sent["messages"] and upstream["body"]["system"] == sent["system"]


def test_tool_trimming_on_claude_codes_pass_through(world, committed, ledger):
    secret, mark = key_with(cap_tool_description_chars=500, drop_tools="Cron*, *Worktree"), marker()
    response, sent = send(world, "claude-code/messages-tool-result-turn.json", secret, "gw-anthropic", mark)
    assert response.status_code == 200, response.text
    layers, saved = response.headers["x-gateway-reduction"].split("; tokens_saved=")
    assert layers == "tools" and int(saved) > 8000  # ~45k characters of descriptions, 5 tools dropped
    deltas = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    text = "".join(d["delta"].get("text", "") for d in deltas if d["type"] == "content_block_delta")
    assert sent["stream"] and text == f"reduced {mark}"  # the client gets its answer as ever
    (upstream,) = upstream_calls(world.fake, mark)
    body = upstream["body"]
    names = [t["name"] for t in sent["tools"]]
    dropped = {n for n in names if n.startswith("Cron") or n.endswith("Worktree")}
    assert len(dropped) == 5 and [t["name"] for t in body["tools"]] == [n for n in names if n not in dropped]
    assert all(len(t["description"]) <= 500 for t in body["tools"])
    by_name = {t["name"]: t for t in sent["tools"]}
    assert all(t["input_schema"]["required"] == by_name[t["name"]]["input_schema"].get("required", [])
               for t in body["tools"] if "required" in t["input_schema"])  # fmt: skip
    assert body["messages"] == sent["messages"] and body["system"] == sent["system"]
    row = ledger(response.headers["request-id"])
    assert row.reductions == "tools" and row.tokens_saved == int(saved) and row.saved_usd > 0


def test_tool_trimming_on_an_openai_sdk_caller_translated_to_anthropic(world, committed):
    import openai

    secret, mark = key_with(cap_tool_description_chars=200), marker()
    client = openai.OpenAI(base_url=world.url + "/v1", api_key=secret, max_retries=0)
    long = "Reads a file from the local disk. " + "It returns numbered lines and never writes. " * 30
    tools = [{"type": "function", "function": {"name": "read_file", "description": long, "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]  # fmt: skip
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", tools=tools, messages=[{"role": "user", "content": f"SAY: trimmed {mark}"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == f"trimmed {mark}"
    assert raw.headers["x-gateway-reduction"].startswith("tools;")
    (upstream,) = upstream_calls(world.fake, mark)
    (tool,) = upstream["body"]["tools"]
    assert upstream["path"] == "/v1/messages" and tool["name"] == "read_file"
    kept = tool["description"].removesuffix(" [...]")
    assert len(tool["description"]) <= 200 and kept.endswith("never writes.") and long.startswith(kept)
    assert tool["input_schema"]["required"] == ["path"]


def test_marks_for_an_anthropic_target_do_not_reach_an_openai_failover_target(world, committed, ledger):
    """Breakpoints are added for the route's first target (Anthropic); when its credential is refused and the
    request fails over to an OpenAI-compatible provider, the pass-through body goes there without them."""
    from tests.e2e import policy_world as pw

    claude = pw.provider(world.fake, ("refused", "sk-wrong-key", 0, 1), kind="anthropic")
    gpt = pw.provider(world.fake, kind="openai")
    alias = pw.route((claude, "fake-claude", 0), (gpt, "fake-gpt", 1))
    secret, mark = key_with(cache_breakpoints=True), marker()
    pw.wait_for_config(world.url, secret, alias)
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": f"SAY: over {mark}"}]
    response = pw.openai_chat(world.url, secret, alias, messages=messages)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == f"over {mark}"
    assert response.headers["x-gateway-reduction"].startswith("breakpoints;")
    calls = upstream_calls(world.fake, mark)
    anthropic = [c for c in calls if c["path"] == "/v1/messages"]
    openai = [c for c in calls if c["path"] == "/v1/chat/completions"]
    assert anthropic and "cache_control" in json.dumps(anthropic[0]["body"])  # the marks went to Anthropic
    assert len(openai) == 1 and "cache_control" not in json.dumps(openai[0]["body"])
    assert openai[0]["body"]["messages"][1]["content"][0]["text"] == f"SAY: over {mark}"
    assert ledger(response.headers["x-request-id"]).attempts == 2
