"""What a stream that did not end normally is charged for (proxy/relay.py): the upstream's own figures where it
sent them, else estimates from the request's size and the content deltas relayed."""

from proxy import relay
from proxy.canonical import Usage

OPENAI_DELTA = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
ANTHROPIC_DELTA = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                   b'"delta":{"type":"text_delta","text":"hi"}}\n\n')  # fmt: skip
RESPONSES_DELTA = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"hi"}\n\n'


def test_one_delta_is_counted_per_content_event_in_every_format():
    for event in (OPENAI_DELTA, ANTHROPIC_DELTA, RESPONSES_DELTA):
        assert (event * 5).count(relay.DELTA) == 5
    escaped = b'data: {"choices":[{"delta":{"content":"say \\"delta\\": here"}}]}\n\n'  # text never matches
    assert escaped.count(relay.DELTA) == 1


def test_nothing_reported_gives_the_estimates():
    usage = relay._so_far(Usage(), deltas=7, estimate_input=lambda: 120)
    assert (usage.input_tokens, usage.output_tokens) == (120, 7)


def test_what_the_upstream_reported_is_kept_and_only_raised_by_the_deltas():
    known = Usage(input_tokens=500, output_tokens=1, cache_read_tokens=100, cache_write_tokens=60)
    usage = relay._so_far(known, deltas=4, estimate_input=lambda: 1 / 0)  # input known: never estimated
    assert usage == Usage(input_tokens=500, output_tokens=4, cache_read_tokens=100, cache_write_tokens=60)
    assert relay._so_far(Usage(input_tokens=5, output_tokens=9), deltas=3, estimate_input=None) == Usage(5, 9)


def test_a_request_of_cached_input_only_is_not_estimated():
    usage = relay._so_far(Usage(cache_read_tokens=900), deltas=2, estimate_input=lambda: 1 / 0)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (0, 900, 2)
