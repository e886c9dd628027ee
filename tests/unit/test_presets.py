"""Provider presets and capability profiles (accounts/presets.py): the table itself, overrides, and how the
request builders read them (formats/openai, upstreams/). End to end against the fake: tests/e2e/test_providers_*."""

import pytest
from django.core.exceptions import ValidationError

from accounts.config import ConfigError, config_parse
from accounts import presets
from accounts.models import Provider
from accounts.presets import CHOICES, PRESETS, Capabilities, capabilities_resolve, capability_problems, preset_for
from proxy import routing, upstreams
from proxy.canonical import (
    ChatRequest,
    Image,
    Message,
    TargetOptions,
    Text,
    Thinking,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolUse,
)
from proxy.formats.openai import render_request
from proxy.upstreams.anthropic import accepted_betas

KINDS = set(presets.KINDS)


def caps(preset: str, **overrides) -> Capabilities:
    return capabilities_resolve(PRESETS[preset], overrides)


def render(preset: str, model: str = "m", **fields) -> dict:
    fields.setdefault("messages", [Message("user", [Text("hi")])])
    req = ChatRequest(model="alias", **fields)
    return render_request(req, TargetOptions(remote_model=model, capabilities=caps(preset)))


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_valid_data(name):
    preset = PRESETS[name]
    assert preset.kind in KINDS
    assert capability_problems(preset.capabilities.as_dict()) == []
    for capability, allowed in CHOICES.items():
        assert getattr(preset.capabilities, capability) in allowed


def test_the_issue_lists_every_preset():
    assert set(PRESETS) == {
        "anthropic", "openai", "azure_openai", "deepseek", "openrouter", "groq", "mistral", "together",
        "gemini_openai", "vllm", "ollama", "lmstudio", "openai_compatible", "bedrock", "vertex",
    }


def test_overrides_replace_preset_values_and_bad_ones_are_named():
    resolved = caps("deepseek", images=True, reasoning_models=["deepseek-r*"], anthropic_betas=None)
    assert resolved.images is True and resolved.reasoning_models == ("deepseek-r*",)
    assert resolved.reasoning_echo is True  # kept from the preset
    problems = capability_problems({"reasoning": "loud", "images": "yes", "nope": 1, "anthropic_betas": "x"})
    assert len(problems) == 4
    assert any(p.startswith("reasoning: 'loud'") for p in problems)
    assert any(p.startswith("nope: unknown capability") for p in problems)


def test_an_empty_preset_is_the_generic_one_of_the_kind():
    assert preset_for("", "anthropic").name == "anthropic"
    assert preset_for("", "openai").name == "openai_compatible"
    assert preset_for("", "openai_responses").name == "openai"


# --- request bodies ------------------------------------------------------------------------------------------


def test_max_tokens_parameter_name_comes_from_the_preset():
    assert render("openai", max_tokens=10)["max_completion_tokens"] == 10
    assert "max_tokens" not in render("openai", max_tokens=10)
    assert render("deepseek", max_tokens=10)["max_tokens"] == 10


def test_reasoning_style_and_models_come_from_the_preset_not_the_model_name():
    thinking = ThinkingConfig(type="enabled", budget_tokens=4096)
    assert render("openai", "o3", thinking=thinking)["reasoning_effort"] == "high"
    assert "reasoning_effort" not in render("openai", "gpt-4o", thinking=thinking)
    assert render("openrouter", "deepseek/deepseek-r1", thinking=thinking)["reasoning"] == {"effort": "high"}
    # the old name heuristic would have sent reasoning_effort to a model called "*reason*"
    assert "reasoning_effort" not in render("openai_compatible", "deepseek-reasoner", thinking=thinking)
    assert "reasoning_effort" not in render("vllm", "qwq-32b", thinking=thinking)


def test_openai_reasoning_models_lose_sampling_parameters_others_keep_them():
    sent = render("openai", "o3", temperature=0.3, top_p=0.9, stop=["x"])
    assert not {"temperature", "top_p", "stop"} & set(sent)
    sent = render("groq", "gpt-oss-20b", temperature=0.3)
    assert sent["temperature"] == 0.3


def test_stream_usage_is_asked_for_only_where_the_preset_allows():
    assert render("openai", stream=True)["stream_options"] == {"include_usage": True}
    assert "stream_options" not in render("mistral", stream=True)


def test_tool_choice_and_parallel_tool_calls_follow_the_capabilities():
    tools = [Tool("lookup", {"type": "object"})]
    choice = ToolChoice(type="any", disable_parallel=True)
    sent = render("openai", tools=tools, tool_choice=choice)
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    sent = render("deepseek", tools=tools, tool_choice=choice)  # no parallel_tool_calls on DeepSeek
    assert sent["tool_choice"] == "required" and "parallel_tool_calls" not in sent
    req = ChatRequest(model="a", messages=[Message("user", [Text("hi")])], tools=tools,
                      tool_choice=ToolChoice(type="none"))
    no_choice = TargetOptions(remote_model="m", capabilities=caps("vllm", tool_choice=False))
    assert not {"tools", "tool_choice"} & set(render_request(req, no_choice))  # "none" said by sending no tools


def test_images_become_a_note_for_an_upstream_without_image_input():
    picture = Image(media_type="image/png", data="iVBORw0KGgo=")
    messages = [Message("user", [Text("what is this?"), picture])]
    assert render("openai", messages=messages)["messages"][0]["content"][1]["type"] == "image_url"
    content = render("deepseek", messages=messages)["messages"][0]["content"]
    assert isinstance(content, str) and "image omitted" in content and "iVBOR" not in content


def test_thinking_is_echoed_as_reasoning_content_only_where_the_preset_wants_it():
    messages = [
        Message("user", [Text("q1")]),
        Message("assistant", [Thinking("let me see", ""), Text("a1")]),
        Message("user", [Text("q2")]),
    ]
    echoed = render("deepseek", messages=messages)["messages"][1]
    assert echoed == {"role": "assistant", "content": "a1", "reasoning_content": "let me see"}
    plain = render("openai", messages=messages)["messages"][1]
    assert plain == {"role": "assistant", "content": "a1"}


def test_thinking_only_turns_vanish_without_a_trace_for_upstreams_that_take_no_reasoning():
    from proxy.canonical import RedactedThinking

    messages = [
        Message("user", [Text("q1")]),
        Message("assistant", [Thinking("secret musing", "sig"), RedactedThinking("opaque")]),
        Message("user", [Text("q2")]),
    ]
    sent = render("openai_compatible", messages=messages)["messages"]
    assert sent == [{"role": "user", "content": "q1\n\nq2"}]  # no extra message, no thinking text
    with_tools = [
        Message("user", [Text("q1")]),
        Message("assistant", [Thinking("musing", ""), ToolUse("call_1", "lookup", {})]),
    ]
    assistant = render("mistral", messages=with_tools)["messages"][1]
    assert "reasoning_content" not in assistant and "musing" not in str(assistant)


# --- URL and headers -----------------------------------------------------------------------------------------


def provider_view(preset: str, base_url: str, **overrides) -> routing.Provider:
    row = Provider(name="p", preset=preset, kind=PRESETS[preset].kind, base_url=base_url, capabilities=overrides)
    return routing.provider_view(row)


def test_azure_uses_the_deployment_url_api_version_and_api_key_header():
    provider = provider_view("azure_openai", "https://res.openai.azure.com/openai/deployments/gpt4o/")
    upstream = upstreams.get(provider.kind)
    account = routing.Account(1, "a", "azure-secret", 1, 0)
    assert upstream.url(provider, "chat") == (
        "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    )
    headers = upstream.headers(provider, account, {})
    assert headers["api-key"] == "azure-secret" and "authorization" not in headers
    newer = provider_view("azure_openai", "https://res.openai.azure.com/openai/deployments/x", api_version="2025-01-01")
    assert upstream.url(newer, "chat").endswith("?api-version=2025-01-01")


def test_other_openai_presets_send_a_bearer_token_and_no_query():
    provider = provider_view("openai", "https://api.openai.com/v1")
    upstream = upstreams.get(provider.kind)
    assert upstream.url(provider, "chat") == "https://api.openai.com/v1/chat/completions"
    assert upstream.headers(provider, routing.Account(1, "a", "sk-x", 1, 0), {})["authorization"] == "Bearer sk-x"


def test_anthropic_betas_outside_the_accepted_list_are_dropped():
    assert accepted_betas("a-1, b-2,c-3", ("a-1", "c-3")) == "a-1,c-3"
    assert accepted_betas("a-1,b-2", None) == "a-1,b-2"  # null: forward every value
    assert accepted_betas("b-2", ()) == ""
    provider = provider_view("anthropic", "https://api.anthropic.com", anthropic_betas=["known-2025"])
    headers = upstreams.get("anthropic").headers(
        provider, routing.Account(1, "a", "k", 1, 0), {"anthropic-beta": "known-2025,unknown-1999"}
    )
    assert headers["anthropic-beta"] == "known-2025" and headers["x-api-key"] == "k"


def test_every_preset_forwards_every_anthropic_beta_by_default():
    """Claude Code's gateway contract: `anthropic-beta` reaches an Anthropic upstream unchanged (README "Claude
    Code's gateway contract" lists what a configured list disables). A preset never narrows it on its own."""
    assert all(p.capabilities.anthropic_betas is None for p in PRESETS.values())
    provider = provider_view("anthropic", "https://api.anthropic.com")
    sent = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"
    headers = upstreams.get("anthropic").headers(provider, routing.Account(1, "a", "k", 1, 0), {"anthropic-beta": sent})
    assert headers["anthropic-beta"] == sent


# --- admin form and config file ------------------------------------------------------------------------------


def test_provider_clean_fills_kind_and_url_from_the_preset_and_refuses_a_mismatch():
    row = Provider(name="ds", preset="deepseek")
    row.clean()
    assert (row.kind, row.base_url) == ("openai", "https://api.deepseek.com/v1")
    with pytest.raises(ValidationError) as e:
        Provider(name="x", preset="anthropic", kind="openai").clean()
    assert "preset" in e.value.message_dict
    with pytest.raises(ValidationError) as e:
        Provider(name="az", preset="azure_openai", capabilities={"auth": "magic"}).clean()
    assert set(e.value.message_dict) == {"base_url", "capabilities"}


def test_config_file_takes_a_preset_and_capability_overrides():
    config = config_parse(
        {"providers": [{"name": "ds", "preset": "deepseek", "api_key": "k", "capabilities": {"images": True}}]},
        environ={},
    )
    spec = config.providers[0]
    assert (spec.kind, spec.base_url, spec.capabilities) == ("openai", "https://api.deepseek.com/v1", {"images": True})
    with pytest.raises(ConfigError) as e:
        config_parse(
            {"providers": [
                {"name": "a", "preset": "azure_openai"},
                {"name": "b", "preset": "nope"},
                {"name": "c", "preset": "openai", "capabilities": {"reasoning": "loud"}},
                {"name": "d", "kind": "openai"},
            ]},
            environ={},
        )  # fmt: skip
    text = "\n".join(e.value.problems)
    assert "providers[0].base_url: required" in text
    assert "providers[1].preset: unknown preset 'nope'" in text
    assert "providers[2].capabilities: reasoning: 'loud'" in text
    assert "providers[3].base_url: required" in text


def test_a_row_saved_without_clean_still_gets_its_presets_kind_and_url_in_the_snapshot():
    view = routing.provider_view(Provider(name="raw", preset="deepseek"))
    assert (view.kind, view.base_url, view.preset) == ("openai", "https://api.deepseek.com/v1", "deepseek")
    assert view.capabilities.reasoning_echo is True
