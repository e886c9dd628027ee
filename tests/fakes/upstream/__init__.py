"""Scripted fake model upstream: speaks Anthropic Messages, OpenAI Chat Completions and OpenAI Responses over
real HTTP, and Claude as AWS Bedrock and Google Vertex AI serve it (the same script engine behind each).

Run:   python -m tests.fakes.upstream --host 127.0.0.1 --port 9100 [--chunks 20] [--key sk-fake] [--coalesce]
       (prints "FAKE_UPSTREAM_READY http://HOST:PORT" when listening; --port 0 picks a free port).
       Streams are written one event per write like a real upstream; --coalesce writes each whole stream at
       once (about half the fake's CPU per stream; for load tests).
Tests: with FakeUpstream() as fake: ...  (thread)   /   FakeUpstreamProcess().start()  (subprocess)

Endpoints: POST /v1/messages[?beta=true], POST /v1/messages/count_tokens, POST /v1/chat/completions,
POST /v1/responses (stream or not; its script is read like Chat's, from `input`: see wire_responses.py),
GET /v1/models[/{id}] (Anthropic shape when anthropic-version or x-api-key is sent, else OpenAI),
GET|DELETE /_fake/requests (last 200), GET /_fake/stats, POST /_fake/reset, GET /_fake/health;
POST /model/{id}/invoke | /invoke-with-response-stream | /count-tokens (Claude on AWS Bedrock: SigV4 recomputed
with botocore, binary event-stream framing; wire_bedrock.py), POST /v1/projects/{p}/locations/{r}/publishers/
anthropic/models/{model}:rawPredict | :streamRawPredict and count-tokens:rawPredict, POST /vertex/token,
GET /_fake/vertex/service_account, POST /_fake/vertex/expire (Claude on Vertex AI; wire_vertex.py);
GET /v1/organizations/usage_report/messages | cost_report, GET /v1/organization/usage/completions | costs (the
vendors' usage and cost reports, from what was served, with an admin key; wire_reports.py);
any other path: recorded, 404 in the error JSON of the API the request looks like.
Auth: the configured key ("" disables auth) as x-api-key or Authorization: Bearer (Anthropic routes),
Authorization: Bearer (OpenAI). Anthropic routes also need an anthropic-version header.

Script, read from the text of the last user turn only (Anthropic: text blocks of the last role:user
message, tool_result blocks ignored; OpenAI: the last role:user message, unless the conversation ends in
role:tool messages). Words may appear anywhere in a line; "WORD:" then the value to end of line.
  (none)                 "Hello from the fake upstream." (streams: min(chunks, len) text pieces)
  SAY: text              reply exactly `text`; several SAY lines are joined with newlines
  SAY_B64: b64           reply the decoded text
  THINK: text            also reasoning: Anthropic thinking block (signature "fakesig_<sha256(text)>"),
                         OpenAI reasoning_content
  USE_TOOL: name {json}  a tool call (one per line = parallel calls); non-JSON args go into the tool's first
                         required property ("USE_TOOL: Read /tmp/x" -> {"file_path": "/tmp/x"}); no args -> {}
                         ids toolu_fake_<n> / call_fake_<n>, n = tool calls already in the history + 1, + 2 ...
  JSON: {json}           forced tool (Anthropic tool_choice tool/any, OpenAI tool_choice function/required)
                         -> that tool called with this input; otherwise the JSON text as the reply
  STOP_AT: seq           "before<seq>after"; if seq is one of the request's stop sequences: "before" with
                         stop_reason stop_sequence (OpenAI finish_reason stop)
  LENGTH                 max_tokens words (OpenAI: max_completion_tokens|max_tokens|16), stop max_tokens/length
  USAGE: in=a out=b cache_read=c cache_write=d   exact token counts (any subset)
  FAIL: 400|401|404|413|429|500|503|529   that HTTP error in the API's error JSON (429/529: retry-after: 1);
        midstream        stream: 3 deltas then Anthropic `event: error` overloaded_error / OpenAI data:{"error"}
        truncate         stream: 3 deltas then the socket closes (no final chunk); non-stream: half the body
        early_eof        stream: 3 deltas then a clean end of body with no terminal event
        timeout          sleep 30 s (header x-fake-hang-ms overrides), then answer normally
        hang_midstream   stream: 3 deltas, sleep 30 s, then the rest; non-stream: like timeout
        (midstream/early_eof on a non-stream request succeed: that's Claude Code's retry; unknown values -> 400)
  FAIL_FIRST: what [tag] like FAIL the first time this exact value is seen by the process, then succeed
  SLOW: ms               delay before the first byte;  SLOW_CHUNKS: ms  delay between stream events
  Images in the request (image blocks / image_url parts) -> "I see N image(s)." when nothing else says
  A last turn of tool results -> "Done: <first 40 chars of the result text>"
  THEN: line             (Responses only) the next step of a multi-step turn, read once the calls of the steps
                         before it are in the history (steps.py); the first request ignores THEN lines
Per-request headers: x-fake-chunks: N, x-fake-interleave: 0 (OpenAI parallel tool fragments in order),
x-fake-hang-ms: N (timeout / hang_midstream sleep), x-fake-coalesce: 1|0.
Ids: msg_fake_NNNNNN / chatcmpl-fakeNNNNNN and request ids req_fake_NNNNNN from a per-process counter;
OpenAI `created` is the constant 1767225600.
Default usage: input = request body bytes // 4, output = text pieces + thinking pieces + 3 per tool call,
cache 0. count_tokens: UTF-8 bytes of all string values under system/messages/tools // 4 (min 1).
"""

from .script import DEFAULT_TEXT
from .server import (
    DEFAULT_CHUNKS, DEFAULT_KEY, DEFAULT_MODELS, FakeUpstream, FakeUpstreamProcess, State, create_app, start_server,
)

__all__ = [
    "DEFAULT_CHUNKS", "DEFAULT_KEY", "DEFAULT_MODELS", "DEFAULT_TEXT", "FakeUpstream", "FakeUpstreamProcess", "State",
    "create_app", "start_server",
]
