"""Provider presets: what each upstream vendor needs, as data. A preset fills a provider's kind, base URL and
*capabilities*; any capability can be overridden per provider (`Provider.capabilities`, the admin's
"Capabilities" field, `capabilities:` in the config file).

Plain Python, no Django: the request path resolves a provider's capabilities once, into its route snapshot
(proxy/routing.py), and hands them to the pure translators in proxy/formats as `TargetOptions.capabilities`.

    capability               values                          what it changes (where)
    max_tokens_param         max_tokens | max_completion_tokens    the output limit's name (formats/openai)
    reasoning                effort | object | none          how thinking is asked for: `reasoning_effort`,
                                                             `reasoning: {effort}`, or not at all
    reasoning_models         globs, empty = every model      which remote models get the reasoning parameter
    sampling_with_reasoning  bool                            False: temperature/top_p/stop dropped for those
                                                             models (OpenAI's o-series and gpt-5 reject them)
    reasoning_echo           bool                            thinking in history goes back as
                                                             `reasoning_content` (DeepSeek); else it vanishes
    stream_usage             bool                            `stream_options.include_usage` is sent
    tool_choice              bool                            `tool_choice` is sent
    parallel_tool_calls      bool                            `parallel_tool_calls` is sent
    images                   bool                            image input; False: a short text note instead
    anthropic_betas          list or null (= forward all)    `anthropic-beta` values an Anthropic-format
                                                             upstream accepts; the others are dropped
    supports_batches         bool                            the upstream has a native batch API (batches/)
    auth                     bearer | api-key | x-api-key    how the credential is sent (proxy/upstreams)
    api_version              string                          Azure's `api-version` query parameter

Provider kinds are registered here too (KINDS): a kind is a wire family plus the module of proxy/upstreams that
speaks to it; the admin's kind choices, the config file's check and the request path's registry all read KINDS.
To add a provider kind: its module in proxy/upstreams (the recipe is in that package's docstring) and one line in
KINDS. To add a preset: one entry in PRESETS (and a row in the README's preset table). To add a capability: a field on
Capabilities with a default that keeps today's behaviour, its values in CHOICES when it is an enum, then read it
where the request is built (proxy/formats/* for the body, proxy/upstreams/* for URL and headers).
"""

from dataclasses import dataclass, field, fields, replace
from fnmatch import fnmatchcase


@dataclass(frozen=True, slots=True)
class Capabilities:
    max_tokens_param: str = "max_tokens"
    reasoning: str = "none"
    reasoning_models: tuple[str, ...] = ()
    sampling_with_reasoning: bool = True
    reasoning_echo: bool = False
    stream_usage: bool = True
    tool_choice: bool = True
    parallel_tool_calls: bool = True
    images: bool = True
    anthropic_betas: tuple[str, ...] | None = None
    supports_batches: bool = False
    auth: str = "bearer"
    api_version: str = ""

    def reasons(self, remote_model: str) -> bool:
        """Whether this model gets the reasoning parameter (and loses sampling parameters if so configured)."""
        if self.reasoning == "none":
            return False
        if not self.reasoning_models:
            return True
        name = remote_model.rsplit("/", 1)[-1]  # routed names such as "openai/o3-mini" count too
        return any(fnmatchcase(name, pattern) or fnmatchcase(remote_model, pattern) for pattern in self.reasoning_models)

    def as_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


CHOICES = {
    "max_tokens_param": ("max_tokens", "max_completion_tokens"),
    "reasoning": ("effort", "object", "none"),
    "auth": ("bearer", "api-key", "x-api-key"),
}
LISTS = ("reasoning_models", "anthropic_betas")


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    label: str
    kind: str  # the Provider.kind it implies: which wire format and upstream module
    base_url: str  # "" when there is no public default (Azure's deployment URL, a generic server)
    capabilities: Capabilities = field(default_factory=Capabilities)
    models_endpoint: bool = True  # check_providers probes GET /models; else a one-token request


OPENAI_REASONERS = ("o1*", "o3*", "o4*", "gpt-5*")
_OPENAI = Capabilities(
    max_tokens_param="max_completion_tokens", reasoning="effort", reasoning_models=OPENAI_REASONERS,
    sampling_with_reasoning=False, supports_batches=True,
)

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("anthropic", "Anthropic", "anthropic", "https://api.anthropic.com",
           Capabilities(auth="x-api-key", supports_batches=True)),
    Preset("openai", "OpenAI", "openai", "https://api.openai.com/v1", _OPENAI),
    Preset("azure_openai", "Azure OpenAI (deployment URL)", "openai", "",
           replace(_OPENAI, auth="api-key", api_version="2024-10-21", supports_batches=False), models_endpoint=False),
    Preset("deepseek", "DeepSeek", "openai", "https://api.deepseek.com/v1",
           Capabilities(reasoning_echo=True, parallel_tool_calls=False, images=False)),
    Preset("openrouter", "OpenRouter", "openai", "https://openrouter.ai/api/v1", Capabilities(reasoning="object")),
    Preset("groq", "Groq", "openai", "https://api.groq.com/openai/v1",
           Capabilities(max_tokens_param="max_completion_tokens", reasoning="effort",
                        reasoning_models=("gpt-oss*", "qwen3*"))),
    Preset("mistral", "Mistral", "openai", "https://api.mistral.ai/v1", Capabilities(stream_usage=False)),
    Preset("together", "Together AI", "openai", "https://api.together.xyz/v1", Capabilities(stream_usage=False)),
    Preset("gemini_openai", "Google Gemini (OpenAI-compatible)", "openai",
           "https://generativelanguage.googleapis.com/v1beta/openai",
           Capabilities(reasoning="effort", reasoning_models=("gemini-2.5*", "gemini-3*"), parallel_tool_calls=False)),
    Preset("vllm", "vLLM", "openai", "http://localhost:8000/v1", Capabilities()),
    Preset("ollama", "Ollama", "openai", "http://localhost:11434/v1", Capabilities(parallel_tool_calls=False)),
    Preset("lmstudio", "LM Studio", "openai", "http://localhost:1234/v1",
           Capabilities(stream_usage=False, parallel_tool_calls=False)),
    Preset("openai_compatible", "Any OpenAI-compatible server", "openai", "", Capabilities()),
    Preset("bedrock", "Claude on AWS Bedrock", "bedrock", "https://bedrock-runtime.us-east-1.amazonaws.com",
           Capabilities(), models_endpoint=False),
    Preset("vertex", "Claude on Google Vertex AI", "vertex", "https://us-east5-aiplatform.googleapis.com",
           Capabilities(), models_endpoint=False),
)}  # fmt: skip


def preset_choices() -> list[tuple[str, str]]:
    """Provider.preset's choices (a callable, like kind_choices, so a new preset needs no migration)."""
    return [(p.name, p.label) for p in PRESETS.values()]


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # Provider.kind
    label: str
    family: str  # presets of the same family fit it (an Anthropic preset never fits an OpenAI kind)
    default_preset: str  # the generic preset of a provider of this kind that names none
    upstream: str  # the class in proxy/upstreams that speaks to it (imported there, by dotted path)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("anthropic", "Anthropic Messages API", "anthropic", "anthropic",
         "proxy.upstreams.anthropic.AnthropicUpstream"),
    Kind("openai", "OpenAI-compatible Chat Completions", "openai", "openai_compatible",
         "proxy.upstreams.openai.OpenAIUpstream"),
    Kind("openai_responses", "OpenAI Responses API", "openai", "openai",
         "proxy.upstreams.openai_responses.OpenAIResponsesUpstream"),
    Kind("bedrock", "Claude on AWS Bedrock", "anthropic", "bedrock", "proxy.upstreams.bedrock.BedrockUpstream"),
    Kind("vertex", "Claude on Google Vertex AI", "anthropic", "vertex", "proxy.upstreams.vertex.VertexUpstream"),
)}  # fmt: skip


def kind_choices() -> list[tuple[str, str]]:
    """Provider.kind's choices (a callable, so a new kind needs no migration)."""
    return [(k.name, k.label) for k in KINDS.values()]


def preset_for(name: str, kind: str) -> Preset:
    """The provider's preset; an empty name means the generic preset of its kind (rows made before presets)."""
    generic = KINDS[kind].default_preset if kind in KINDS else "openai_compatible"
    return PRESETS.get(name) or PRESETS[generic]


def preset_kind_problem(preset: str, kind: str) -> str | None:
    """A preset fixes the wire format: an Anthropic preset with an OpenAI kind (or the reverse) is a mistake."""
    found = PRESETS.get(preset)
    if found is None:
        return f"unknown preset {preset!r} (expected one of: {', '.join(PRESETS)})"
    if kind and (kind not in KINDS or KINDS[kind].family != KINDS[found.kind].family):
        return f"preset {preset!r} speaks the {found.kind} API; kind {kind!r} does not"
    return None


def capability_problems(overrides) -> list[str]:
    """Every problem with a capability-override mapping, each naming its key; [] when it is valid."""
    if not isinstance(overrides, dict):
        return ["expected a mapping of capability: value"]
    known = {f.name: f for f in fields(Capabilities)}
    problems = []
    for key, value in overrides.items():
        if key not in known:
            problems.append(f"{key}: unknown capability (expected one of: {', '.join(known)})")
        elif key in CHOICES and value not in CHOICES[key]:
            problems.append(f"{key}: {value!r} is not one of {', '.join(CHOICES[key])}")
        elif key == "anthropic_betas" and value is None:
            continue
        elif key in LISTS and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"{key}: expected a list of strings")
        elif known[key].type in (bool, "bool") and not isinstance(value, bool):
            problems.append(f"{key}: expected true or false")
        elif key == "api_version" and not isinstance(value, str):
            problems.append(f"{key}: expected a string")
    return problems


def capabilities_resolve(preset: Preset, overrides: dict | None) -> Capabilities:
    """The preset's capabilities with the provider's valid overrides applied (invalid ones are ignored here:
    the admin form and the config file refuse them before they are saved)."""
    if not overrides or capability_problems(overrides):
        return preset.capabilities
    values = {k: (tuple(v) if k in LISTS and v is not None else v) for k, v in overrides.items()}
    return replace(preset.capabilities, **values)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
