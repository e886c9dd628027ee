"""Thinking and reasoning across the two APIs, and the clients' own retry behaviour through the gateway."""

import uuid

import pytest

from .conftest import UPSTREAM_ALIASES


@pytest.mark.parametrize("model", UPSTREAM_ALIASES)
def test_thinking_reaches_an_anthropic_client_as_a_thinking_block(world, model):
    with world.anthropic().messages.stream(
        model=model,
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "THINK: pondering deeply\nSAY: answer"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "pondering deeply" and final.content[1].text == "answer"
    if model == "gw-anthropic":  # a real signature passes through untouched
        assert final.content[0].signature.startswith("fakesig_")


@pytest.mark.parametrize("model", UPSTREAM_ALIASES)
def test_reasoning_reaches_an_openai_client_as_reasoning_content(world, model):
    completion = world.openai().chat.completions.create(
        model=model, reasoning_effort="low", messages=[{"role": "user", "content": "THINK: hmm\nSAY: done"}]
    )
    message = completion.choices[0].message
    assert message.content == "done"
    assert (message.model_extra or {}).get("reasoning_content") == "hmm"


def test_reasoning_effort_becomes_a_thinking_budget_for_anthropic(world):
    world.fake.state.requests.clear()
    world.openai().chat.completions.create(
        model="gw-anthropic", reasoning_effort="medium", temperature=0.7, messages=[{"role": "user", "content": "SAY: x"}]
    )
    sent = world.upstream_requests()[-1]["body"]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] > 2048 and "temperature" not in sent  # P-18


def test_claude_code_thinking_is_not_forwarded_to_an_openai_upstream(world):
    world.fake.state.requests.clear()
    world.anthropic().messages.create(
        model="gw-openai",
        max_tokens=100,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "SAY: x"}],
    )
    sent = world.upstream_requests()[-1]["body"]
    assert "thinking" not in sent and "reasoning_effort" not in sent  # fake-gpt is not a reasoning model


@pytest.mark.parametrize("model", UPSTREAM_ALIASES)
def test_anthropic_sdk_retries_a_529_after_retry_after(world, model):
    tag = uuid.uuid4().hex[:8]
    message = world.anthropic(max_retries=1).messages.create(
        model=model, max_tokens=20, messages=[{"role": "user", "content": f"FAIL_FIRST: 529 {tag}\nSAY: second try"}]
    )
    assert message.content[0].text == "second try"


@pytest.mark.parametrize("model", UPSTREAM_ALIASES)
def test_openai_sdk_retries_a_429(world, model):
    tag = uuid.uuid4().hex[:8]
    completion = world.openai(max_retries=1).chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"FAIL_FIRST: 429 {tag}\nSAY: again"}]
    )
    assert completion.choices[0].message.content == "again"


def test_claude_code_retry_without_stream_after_a_broken_stream(world):
    """Claude Code's recovery: the stream ends in an error event, then the same body is sent without `stream`."""
    import anthropic

    body = {"model": "claude-opus-4-8", "max_tokens": 200, "messages": [{"role": "user", "content": "FAIL: midstream"}]}
    client = world.anthropic()
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(**body) as stream:
            for _ in stream:
                pass
    retry = client.messages.create(**body)  # non-stream: the fake answers this one
    assert retry.content[0].text
