"""Provider presets through the real gateway, each against the fake upstream in that vendor's dialect
(tests/fakes/upstream/wire_dialects.py): Azure's deployment URL and api-key header, DeepSeek's reasoning round
trip across three turns, an Anthropic-format upstream that rejects an unknown beta, tool calls all at index 0,
and a router's cache-creation usage."""

import time

import anthropic
import pytest

from .conftest import FAKE_KEY

ROUTES = {  # alias -> (provider name, preset, base URL suffix, capability overrides)
    "pv-azure": ("pv-azure", "azure_openai", "/openai/deployments/dep-1", {}),
    "pv-deepseek": ("pv-deepseek", "deepseek", "/deepseek/v1", {}),
    "pv-strict": ("pv-strict", "anthropic", "/strict-anthropic", {"anthropic_betas": ["known-beta-2025-01-01"]}),
    "pv-strict-all": ("pv-strict-all", "anthropic", "/strict-anthropic", {}),
    "pv-index0": ("pv-index0", "openai_compatible", "/index0/v1", {}),
    "pv-router": ("pv-router", "openrouter", "/router/v1", {}),
}


@pytest.fixture(scope="module")
def presets(world, django_db_blocker):
    from accounts.models import ModelRoute, Provider, ProviderAccount, RouteTarget

    with django_db_blocker.unblock():
        for alias, (name, preset, suffix, overrides) in ROUTES.items():
            provider = Provider(name=name, preset=preset, base_url=world.fake.url + suffix, capabilities=overrides,
                                read_timeout=20, connect_timeout=2)  # fmt: skip
            provider.full_clean()  # fills the kind from the preset, as the admin does
            provider.save()
            account = ProviderAccount(provider=provider, name="main")
            account.set_credential(FAKE_KEY)
            account.save()
            route = ModelRoute.objects.create(alias=alias)
            RouteTarget.objects.create(route=route, provider=provider, remote_model="fake-model")
    time.sleep(0.6)  # GATEWAY_CACHE_TTL in the test server
    return world


def last_request(world, path_part: str) -> dict:
    return next(r for r in reversed(world.upstream_requests()) if path_part in r["path"])


def test_azure_gets_its_deployment_url_api_version_and_api_key_header(presets):
    completion = presets.openai().chat.completions.create(
        model="pv-azure", max_tokens=50, messages=[{"role": "user", "content": "SAY: from azure"}]
    )
    assert completion.choices[0].message.content == "from azure"
    sent = last_request(presets, "/openai/deployments/")
    assert sent["path"] == "/openai/deployments/dep-1/chat/completions"
    assert sent["query"] == "api-version=2024-10-21"
    assert sent["headers"]["api-key"] == FAKE_KEY and "authorization" not in sent["headers"]
    assert sent["body"]["max_completion_tokens"] == 50 and "max_tokens" not in sent["body"]


def test_deepseek_reasoning_goes_back_as_reasoning_content_across_three_turns(presets):
    client = presets.anthropic()
    history = []
    thoughts = ["first thought", "second thought", "third thought"]
    for turn, thought in enumerate(thoughts, 1):
        history.append({"role": "user", "content": f"THINK: {thought}\nSAY: answer {turn}"})
        message = client.messages.create(model="pv-deepseek", max_tokens=200, messages=history)
        assert [b.type for b in message.content] == ["thinking", "text"]
        assert message.content[0].thinking == thought and message.content[1].text == f"answer {turn}"
        history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]})
    sent = last_request(presets, "/deepseek/")["body"]["messages"]
    echoed = [(m["reasoning_content"], m["content"]) for m in sent if m["role"] == "assistant"]
    assert echoed == [("first thought", "answer 1"), ("second thought", "answer 2")]


def test_an_anthropic_upstream_gets_only_the_betas_its_preset_accepts(presets):
    betas = {"anthropic-beta": "known-beta-2025-01-01,unknown-beta-1999-01-01"}
    client = presets.anthropic()
    message = client.messages.create(model="pv-strict", max_tokens=20, extra_headers=betas,
                                     messages=[{"role": "user", "content": "SAY: strict ok"}])  # fmt: skip
    assert message.content[0].text == "strict ok"
    assert last_request(presets, "/strict-anthropic/")["headers"]["anthropic-beta"] == "known-beta-2025-01-01"
    with pytest.raises(anthropic.BadRequestError) as refused:  # without the list, the unknown beta goes through
        client.messages.create(model="pv-strict-all", max_tokens=20, extra_headers=betas,
                               messages=[{"role": "user", "content": "SAY: x"}])  # fmt: skip
    assert "unknown-beta-1999-01-01" in str(refused.value)


def test_tool_calls_streamed_at_index_0_each_become_a_tool_use_block(presets):
    tools = [{"name": n, "input_schema": {"type": "object"}} for n in ("Read", "Bash")]
    with presets.anthropic().messages.stream(
        model="pv-index0", max_tokens=200, tools=tools,
        messages=[{"role": "user", "content": 'SAY: calling\nUSE_TOOL: Read {"file_path": "a.txt"}\n'
                                              'USE_TOOL: Bash {"command": "ls"}'}],
    ) as stream:  # fmt: skip
        final = stream.get_final_message()
    calls = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert calls == [("Read", {"file_path": "a.txt"}), ("Bash", {"command": "ls"})]
    assert len({b.id for b in final.content if b.type == "tool_use"}) == 2
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize("stream", [False, True])
def test_a_routers_cache_creation_tokens_reach_the_client_as_cache_writes(presets, stream):
    content = "USAGE: in=100 out=5 cache_read=40 cache_write=60\nSAY: cached"
    client = presets.anthropic()
    if stream:
        with client.messages.stream(model="pv-router", max_tokens=20,
                                    messages=[{"role": "user", "content": content}]) as s:  # fmt: skip
            usage = s.get_final_message().usage
    else:
        usage = client.messages.create(model="pv-router", max_tokens=20,
                                       messages=[{"role": "user", "content": content}]).usage  # fmt: skip
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (100, 40, 60)


def test_minted_thinking_crosses_formats_with_its_integrity(presets):
    """DeepSeek's reasoning becomes a thinking block signed by the gateway; sent on to Anthropic it is removed
    (Anthropic's own thinking kept byte for byte); back at DeepSeek it is verified and echoed, a tampered one not."""
    client = presets.anthropic()
    history = [{"role": "user", "content": "THINK: minted thought\nSAY: one"}]
    first = client.messages.create(model="pv-deepseek", max_tokens=200, messages=history)
    assert first.content[0].signature.startswith("gh-think-1.")
    history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
    history.append({"role": "user", "content": "THINK: anthropic thought\nSAY: two"})
    second = client.messages.create(model="native-fake-claude", max_tokens=2000, messages=history,
                                    thinking={"type": "enabled", "budget_tokens": 1024})  # fmt: skip
    sent = last_request(presets, "/v1/messages")["body"]["messages"]
    assert sent[1]["content"] == [{"type": "text", "text": "one"}]  # the minted block is gone, nothing else
    anthropic_block = second.content[0].model_dump(exclude_none=True)
    assert anthropic_block["signature"].startswith("fakesig_")
    history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in second.content]})
    history.append({"role": "user", "content": "SAY: three"})
    client.messages.create(model="native-fake-claude", max_tokens=2000, messages=history,
                           thinking={"type": "enabled", "budget_tokens": 1024})  # fmt: skip
    kept = last_request(presets, "/v1/messages")["body"]["messages"][3]["content"][0]
    assert kept == anthropic_block  # Anthropic's own thinking, byte for byte
    client.messages.create(model="pv-deepseek", max_tokens=200, messages=history)
    echoed = [m.get("reasoning_content") for m in last_request(presets, "/deepseek/")["body"]["messages"]
              if m["role"] == "assistant"]  # fmt: skip
    assert echoed == ["minted thought", None]  # ours verified and echoed; Anthropic's signed thinking is not ours
    history[1]["content"][0]["thinking"] = "a thought the gateway never saw"
    client.messages.create(model="pv-deepseek", max_tokens=200, messages=history)
    tampered = [m for m in last_request(presets, "/deepseek/")["body"]["messages"] if m["role"] == "assistant"]
    assert "reasoning_content" not in tampered[0]  # the signature no longer verifies: not echoed
