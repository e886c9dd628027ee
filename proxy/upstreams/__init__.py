"""Provider kinds: one Upstream (proxy/upstreams/base.py, the provider interface) per kind, found through the
kind registry (accounts.presets.KINDS). Body shapes belong to proxy.formats; an Upstream says where a call goes,
how it is signed and sent, and how the provider's batch API works.

To add a provider kind (for example one whose calls need a signature or an envelope of their own):
    1. a module here with a subclass of base.Upstream: `api` (the proxy.formats name its bodies use), `paths`
       (or `url`) and `own_headers` (the base adds the hop header, proxy/hop.py); override `payload` to wrap a
       format's body in the provider's envelope, `request` for a URL that depends on the body or a signature over
       the bytes, `send` for answers framed otherwise than its `api` (turn them into that API's bytes there), and
       `batch_*` if it has a batch API (and its presets say supports_batches). An operation missing from
       `paths` is one the kind does not offer (count_tokens: the local estimate answers);
    2. one line in accounts.presets.KINDS naming it (and its generic preset).
Nothing else changes: the retry loop (proxy/attempts.py), native batches (batches/native.py), the connection
checks (proxy/checks.py), the admin's kind choices and the config file read the registry.
"""

from importlib import import_module

from accounts.presets import KINDS

_loaded: dict = {}


def get(kind: str):
    upstream = _loaded.get(kind)
    if upstream is None:
        module, _, name = KINDS[kind].upstream.rpartition(".")
        upstream = _loaded[kind] = getattr(import_module(module), name)()
    return upstream
