"""Google Vertex AI's envelope of the Anthropic Messages API, caller side only (Claude Code with
CLAUDE_CODE_USE_VERTEX=1 and ANTHROPIC_VERTEX_BASE_URL=https://<gateway>/vertex/v1; views in proxy/api.py):

    POST .../projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict        complete
    POST .../projects/{p}/locations/{l}/publishers/anthropic/models/{model}:streamRawPredict  SSE, as Anthropic's
    POST .../projects/{p}/locations/{l}/publishers/anthropic/models/count-tokens:rawPredict   token counting

The body is the Messages body without `model`, plus `anthropic_version` (dropped); betas travel in the
`anthropic-beta` header as usual. The model id (`claude-sonnet-4-5@20250929`) is mapped onto an Anthropic model
name by proxy/formats/envelope.py. Project and location are not checked: the gateway key decides what the
caller may use. Everything else (stream, errors) is the Anthropic format's, unchanged.
"""

from ..anthropic import *  # noqa: F403  (the whole surface, unchanged)
from ..anthropic import __all__ as _anthropic_all
from ..envelope import unwrap

NAME = "anthropic"
__all__ = [*_anthropic_all, "envelope"]


def envelope(body: dict, model_id: str, stream: bool, headers):
    """(the Messages body, the headers unchanged)."""
    return unwrap(body, model_id, stream), headers
