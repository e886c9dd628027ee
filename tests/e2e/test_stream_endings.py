"""Stream endings and keep-alives as each client sees them."""

import httpx
import openai
import pytest

from proxy.formats.sse import SSEParser

from .conftest import UPSTREAM_ALIASES


@pytest.mark.parametrize("model", UPSTREAM_ALIASES)
def test_a_truncated_upstream_stream_ends_with_an_error_for_openai_clients(world, model):
    with pytest.raises(openai.APIError):
        for _ in world.openai().chat.completions.create(
            model=model, messages=[{"role": "user", "content": "FAIL: early_eof"}], stream=True
        ):
            pass


def test_a_silent_thinking_stream_gets_pings(world):
    """gw-openai translates to an OpenAI upstream, which sends nothing while it thinks; the test server pings
    after 0.2 s of silence (GATEWAY_STREAM_PING_SECONDS)."""
    with httpx.stream(
        "POST",
        world.url + "/v1/messages",
        headers={"x-api-key": world.keys["alpha"], "anthropic-version": "2023-06-01", "x-fake-chunks": "4"},
        json={
            "model": "gw-openai",
            "max_tokens": 2000,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "stream": True,
            "messages": [{"role": "user", "content": "SLOW_CHUNKS: 500\nSAY: one two three four"}],
        },
        timeout=10,
    ) as response:
        raw = response.read()
    events = [e.event for e in SSEParser().feed(raw)]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events.count("ping") >= 6  # 3+ silent gaps of 500 ms, a ping every 200 ms
