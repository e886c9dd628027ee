"""Request bodies in the OpenAPI document (/openapi.json, /docs): what each endpoint takes, as JSON Schema.

Documentation only: nothing here runs on a request (the endpoints read raw bytes; proxy/validate.py checks the
fields the gateway relies on, the formats check the rest as they translate). The schemas describe the common,
documented shape of each API — enough for a reader, and for the schema-based fuzz suite (tests/e2e/test_fuzz.py)
to generate valid and invalid bodies — and allow the fields they do not list (every API grows new ones, and a
pass-through forwards them untouched).

To document a new endpoint: a schema below, and `openapi_extra=body(SCHEMA)` on its route in proxy/api.py.
"""

TEXT_BLOCK = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
}
TOOL_USE_BLOCK = {
    "type": "object",
    "required": ["type", "id", "name", "input"],
    "properties": {"type": {"const": "tool_use"}, "id": {"type": "string"}, "name": {"type": "string"},
                   "input": {"type": "object"}},
}  # fmt: skip
TOOL_RESULT_BLOCK = {
    "type": "object",
    "required": ["type", "tool_use_id"],
    "properties": {
        "type": {"const": "tool_result"},
        "tool_use_id": {"type": "string"},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": TEXT_BLOCK}]},
        "is_error": {"type": "boolean"},
    },
}
ANTHROPIC_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["user", "assistant"]},
        "content": {"anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"anyOf": [TEXT_BLOCK, TOOL_USE_BLOCK, TOOL_RESULT_BLOCK]}},
        ]},
    },
}  # fmt: skip
ANTHROPIC_TOOL = {
    "type": "object",
    "required": ["name", "input_schema"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
        "description": {"type": "string"},
        "input_schema": {"type": "object", "properties": {"type": {"const": "object"}}, "required": ["type"]},
    },
}
_ANTHROPIC_FIELDS = {
    "model": {"type": "string", "minLength": 1, "description": "a route alias (or a pattern route's match)"},
    "messages": {"type": "array", "items": ANTHROPIC_MESSAGE},
    "system": {"anyOf": [{"type": "string"}, {"type": "array", "items": TEXT_BLOCK}]},
    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 0},
    "stop_sequences": {"type": "array", "items": {"type": "string"}},
    "metadata": {"type": "object", "properties": {"user_id": {"type": "string"}}},
    "tools": {"type": "array", "items": ANTHROPIC_TOOL},
    "tool_choice": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["auto", "any", "tool", "none"]}, "name": {"type": "string"}},
    },
    "thinking": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["enabled", "disabled"]},
                       "budget_tokens": {"type": "integer", "minimum": 1024}},
    },
}
ANTHROPIC_MESSAGES = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        **_ANTHROPIC_FIELDS,
        "max_tokens": {"type": "integer", "minimum": 1},
        "stream": {"type": "boolean"},
    },
}
ANTHROPIC_COUNT_TOKENS = {"type": "object", "required": ["model", "messages"], "properties": _ANTHROPIC_FIELDS}

OPENAI_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": TEXT_BLOCK}, {"type": "null"}]},
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
    },
}
OPENAI_TOOL = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                           "description": {"type": "string"}, "parameters": {"type": "object"}},
        },  # fmt: skip
    },
}
OPENAI_CHAT = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {"type": "array", "items": OPENAI_MESSAGE},
        "max_tokens": {"type": ["integer", "null"], "minimum": 1},
        "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1},
        "stream": {"type": ["boolean", "null"]},
        "stream_options": {"type": ["object", "null"], "properties": {"include_usage": {"type": "boolean"}}},
        "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
        "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        "tools": {"type": "array", "items": OPENAI_TOOL},
        "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}]},
        "reasoning_effort": {"enum": ["minimal", "low", "medium", "high"]},
        "response_format": {"type": "object", "required": ["type"],
                            "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}}},
        "user": {"type": "string"},
        "n": {"type": "integer", "const": 1},
    },
}  # fmt: skip

RESPONSES_INPUT_ITEM = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "type": {"const": "message"},
        "role": {"enum": ["user", "assistant", "system", "developer"]},
        "content": {"anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "object", "required": ["type", "text"],
                                        "properties": {"type": {"enum": ["input_text", "output_text"]},
                                                       "text": {"type": "string"}}}},
        ]},
    },
}  # fmt: skip
_RESPONSES_FIELDS = {
    "model": {"type": "string", "minLength": 1},
    "input": {"anyOf": [{"type": "string", "minLength": 1},
                        {"type": "array", "items": RESPONSES_INPUT_ITEM, "minItems": 1}]},
    "instructions": {"type": ["string", "null"]},
    "previous_response_id": {"type": "string", "description": "an id this gateway returned (stored responses)"},
    "tools": {"type": "array", "items": {
        "type": "object",
        "required": ["type", "name"],
        "properties": {"type": {"enum": ["function", "custom"]},
                       "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                       "description": {"type": "string"}, "parameters": {"type": "object"}},
    }},
    "reasoning": {"type": ["object", "null"], "properties": {"effort": {"enum": ["minimal", "low", "medium", "high"]}}},
}
RESPONSES_CREATE = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        **_RESPONSES_FIELDS,
        "max_output_tokens": {"type": ["integer", "null"], "minimum": 16},
        "stream": {"type": ["boolean", "null"]},
        "store": {"type": ["boolean", "null"]},
        "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
        "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    },
}
RESPONSES_INPUT_TOKENS = {"type": "object", "required": ["model", "input"], "properties": _RESPONSES_FIELDS}


def body(schema: dict) -> dict:
    """`openapi_extra` for a route whose request body is JSON of this schema."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
