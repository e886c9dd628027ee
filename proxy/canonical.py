"""The gateway's own vocabulary: one request, response and stream-event model that both wire formats map to.

`formats/anthropic` and `formats/openai` convert between their wire JSON and these types, in both directions
(a format is spoken by callers and by upstreams alike). Nothing else in the gateway looks inside wire JSON.
The model follows Anthropic's content-block shape because it is the richer of the two: every OpenAI message
maps onto blocks without loss, not the other way round. Stop reasons use Anthropic's names; usage uses
Anthropic's meaning of input_tokens (uncached only, P-21).
"""

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from accounts.presets import Capabilities

# --- content blocks -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Text:
    text: str
    cache_control: dict | None = None


@dataclass(slots=True)
class Image:
    """Either inline base64 (`media_type` + `data`) or a remote `url`."""

    media_type: str = ""
    data: str = ""
    url: str = ""
    cache_control: dict | None = None


@dataclass(slots=True)
class Document:
    """A PDF or text document; `source` keeps Anthropic's source object as given."""

    source: dict
    title: str | None = None
    context: str | None = None
    cache_control: dict | None = None


@dataclass(slots=True)
class ToolUse:
    id: str
    name: str
    input: dict
    cache_control: dict | None = None


@dataclass(slots=True)
class ToolResult:
    tool_use_id: str
    content: list["Text | Image | Document"] = field(default_factory=list)
    is_error: bool = False
    cache_control: dict | None = None


@dataclass(slots=True)
class Thinking:
    thinking: str
    signature: str = ""  # "" when the text did not come from Anthropic (never sent to Anthropic, P-20)


@dataclass(slots=True)
class RedactedThinking:
    data: str


Block = Union[Text, Image, Document, ToolUse, ToolResult, Thinking, RedactedThinking]

Role = Literal["user", "assistant", "system"]


@dataclass(slots=True)
class Message:
    """`system` messages are kept where the client put them (Claude Code's mid-conversation system beta,
    aider's trailing system message); each format decides whether to keep or hoist them."""

    role: Role
    content: list[Block]


# --- request ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tool:
    name: str
    input_schema: dict
    description: str | None = None
    strict: bool | None = None
    cache_control: dict | None = None


@dataclass(slots=True)
class ToolChoice:
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel: bool = False


# Policy (docs/translation.md §5.9): the thinking budget an effort level stands for, and the levels that mean "none".
EFFORT_BUDGETS = {"low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}
NO_THINKING_EFFORTS = frozenset({"none", "minimal"})


@dataclass(slots=True)
class ThinkingConfig:
    """`enabled` carries a budget; `adaptive` lets the model choose, guided by `effort`."""

    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: int | None = None
    effort: str | None = None  # low | medium | high | xhigh | max (Anthropic output_config / OpenAI reasoning_effort)


@dataclass(slots=True)
class ResponseFormat:
    type: Literal["json_object", "json_schema"]
    schema: dict | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class ChatRequest:
    model: str  # exactly what the client asked for; echoed back in responses
    messages: list[Message]
    system: list[Text] = field(default_factory=list)
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False  # an OpenAI client asked for the trailing usage chunk
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None


@dataclass(slots=True)
class TargetOptions:
    """What the chosen route target tells a request renderer."""

    remote_model: str
    default_max_tokens: int = 4096  # when the client sent none and the upstream needs one (P-9)
    max_output_tokens: int | None = None  # clamp (P-10)
    capabilities: Capabilities = Capabilities()  # the provider's preset + overrides (accounts/presets.py)


# --- response -----------------------------------------------------------------------------------------------

StopReason = Literal[
    "end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"
]


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0  # uncached input only
    output_tokens: int = 0  # includes reasoning
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0  # every cache write, 5-minute and 1-hour
    reasoning_tokens: int | None = None
    cache_write_1h_tokens: int = 0  # the 1-hour part of cache_write_tokens (Anthropic's usage.cache_creation)

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


@dataclass(slots=True)
class ChatResponse:
    id: str
    model: str
    content: list[Block]
    stop_reason: StopReason = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)


# --- stream events (Anthropic's grammar: start, blocks with contiguous indices, delta, stop) -----------------


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage


@dataclass(slots=True)
class BlockStart:
    index: int
    block: Text | Thinking | ToolUse | RedactedThinking  # empty text/thinking, tool_use with input {}


@dataclass(slots=True)
class BlockDelta:
    index: int
    kind: Literal["text", "thinking", "input_json", "signature"]
    value: str


@dataclass(slots=True)
class BlockStop:
    index: int


@dataclass(slots=True)
class MessageDelta:
    stop_reason: StopReason
    stop_sequence: str | None
    usage: Usage  # cumulative: replaces what MessageStart said


@dataclass(slots=True)
class MessageStop:
    pass


@dataclass(slots=True)
class Ping:
    pass


@dataclass(slots=True)
class StreamError:
    error: Any  # proxy.errors.GatewayError


StreamEvent = Union[MessageStart, BlockStart, BlockDelta, BlockStop, MessageDelta, MessageStop, Ping, StreamError]


def cumulative_usage(start: Usage, delta: Usage) -> Usage:
    """A stream's usage so far: MessageDelta's replaces MessageStart's, but when the delta carries no input figures
    at all the start's are kept rather than reporting a zero-token prompt (caller-side stream encoders)."""
    if delta.prompt_tokens or not start.prompt_tokens:
        return delta
    return Usage(
        input_tokens=start.input_tokens,
        output_tokens=delta.output_tokens,
        cache_read_tokens=start.cache_read_tokens,
        cache_write_tokens=start.cache_write_tokens,
        reasoning_tokens=delta.reasoning_tokens,
        cache_write_1h_tokens=start.cache_write_1h_tokens,
    )


# --- rate-limit state, as the caller's limit headers show it ------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit after this request: the tightest of the key's and the project's (proxy.policies.limits)."""

    limit: int
    remaining: int
    reset_s: float  # seconds until the window has fully refilled


@dataclass(frozen=True, slots=True)
class Limits:
    requests: LimitState | None = None
    tokens: LimitState | None = None
