"""Upstream kinds: where to send a request and how to sign it. The body's shape belongs to proxy.formats.

To add a kind: a module here with a class exposing `api`, `url(provider, operation)` and
`headers(provider, account, client_headers)` (ending with the hop header, proxy/hop.py: every upstream call
builds its headers there), one line in UPSTREAMS, and the Provider.kind choice.
"""

from importlib import import_module

UPSTREAMS = {
    "anthropic": "proxy.upstreams.anthropic.AnthropicUpstream",
    "openai": "proxy.upstreams.openai.OpenAIUpstream",
    "openai_responses": "proxy.upstreams.openai_responses.OpenAIResponsesUpstream",
}

_loaded: dict = {}


def get(kind: str):
    upstream = _loaded.get(kind)
    if upstream is None:
        module, _, name = UPSTREAMS[kind].rpartition(".")
        upstream = _loaded[kind] = getattr(import_module(module), name)()
    return upstream
