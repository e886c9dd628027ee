"""The fake upstream's prompt-cache simulation (tests/fakes/upstream/prompt_cache.py), as the official SDKs see
it in each wire format: Anthropic writes at breakpoints and reads them back, OpenAI-compatible caches any prefix
it has seen, and a changed first line costs the whole prefix."""

import anthropic
import openai
import pytest

from tests.fakes.upstream import FakeUpstream

BIG = "You are a careful coding agent. " * 600  # ~4,800 tokens by the fake's bytes / 4


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream(key="k", prompt_cache=True) as server:
        yield server


def test_anthropic_breakpoints_write_then_read(fake):
    client = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
    system = [{"type": "text", "text": BIG, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model="m-a", max_tokens=10, system=system, messages=[{"role": "user", "content": "SAY: a"}])
    second = client.messages.create(model="m-a", max_tokens=10, system=system, messages=[{"role": "user", "content": "SAY: b"}])
    assert first.usage.cache_creation_input_tokens > 4000 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.input_tokens < 50
    unmarked = [{"type": "text", "text": BIG}]
    third = client.messages.create(model="m-a", max_tokens=10, system=unmarked, messages=[{"role": "user", "content": "SAY: c"}])
    assert third.usage.cache_read_input_tokens == 0 and third.usage.cache_creation_input_tokens == 0


def test_openai_prefix_cache_is_automatic_and_a_changed_first_line_defeats_it(fake):
    client = openai.OpenAI(base_url=fake.openai_url, api_key="k", max_retries=0)

    def ask(first_line, question):
        messages = [{"role": "system", "content": first_line}, {"role": "system", "content": BIG},
                    {"role": "user", "content": f"SAY: {question}"}]  # fmt: skip
        return client.chat.completions.create(model="m-o", messages=messages).usage

    ask("billing: v1.aaa", "one")
    same = ask("billing: v1.aaa", "two")
    changed = ask("billing: v1.bbb", "three")
    assert same.prompt_tokens_details.cached_tokens >= 4000 and same.prompt_tokens_details.cached_tokens % 128 == 0
    assert changed.prompt_tokens_details.cached_tokens == 0
