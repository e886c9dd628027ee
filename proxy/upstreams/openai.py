"""Any OpenAI-compatible Chat Completions server: base URL includes /v1, key as a bearer token (optional for
local servers such as Ollama or vLLM)."""

PATHS = {"chat": "/chat/completions", "models": "/models"}


class OpenAIUpstream:
    api = "openai"

    def url(self, provider, operation: str) -> str:
        return provider.base_url + PATHS[operation]

    def headers(self, provider, account, client_headers) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if account.credential:
            headers["authorization"] = f"Bearer {account.credential}"
        headers.update(provider.extra_headers)
        return headers
