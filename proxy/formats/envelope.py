"""What the Bedrock and Vertex envelopes share (proxy/formats/bedrock, proxy/formats/vertex): both carry the
Anthropic Messages API with the model in the URL and `anthropic_version` in the body, and both name Claude models
their own way. The rule that maps their ids onto Anthropic model names lives here, once:

    Bedrock   [region.]anthropic.<name>[-v<n>[:<m>]]        us.anthropic.claude-sonnet-4-5-20250929-v1:0
              (regions us, eu, apac, global, us-gov, jp, au, ca)   -> claude-sonnet-4-5-20250929
              an inference profile ARN: the part after its last "/"
    Vertex    <name>@<date>                                 claude-sonnet-4-5@20250929 -> claude-sonnet-4-5-20250929
    other     unchanged (a gateway alias such as `gw-anthropic` or `sonnet` works as a Bedrock or Vertex model id)

so the routes written for Claude Code's plain mode (`claude-*`, exact aliases) serve the cloud modes unchanged.
"""

import re

BEDROCK_ID = re.compile(r"^(?:(?:us|eu|apac|global|us-gov|jp|au|ca)\.)?anthropic\.(?P<name>.+?)(?:-v\d+(?::\d+)?)?$")


def anthropic_model_name(model_id: str) -> str:
    """The Anthropic model name for a Bedrock or Vertex model id (see the table above)."""
    model_id = model_id.rsplit("/", 1)[-1]  # arn:aws:bedrock:<region>:<account>:inference-profile/<id>
    found = BEDROCK_ID.match(model_id)
    if found is not None:
        return found.group("name")
    name, at, version = model_id.partition("@")
    return f"{name}-{version}" if at and version else name


def unwrap(body: dict, model_id: str, stream: bool) -> dict:
    """The Messages API body inside an envelope: the model from the URL, `stream` from the URL's operation, the
    envelope's own `anthropic_version` dropped. Anything else passes through unchanged (Bedrock's
    `anthropic_beta` is taken out by proxy/formats/bedrock first)."""
    body.pop("anthropic_version", None)
    body["model"] = anthropic_model_name(model_id)
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body
