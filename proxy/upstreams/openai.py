"""Any OpenAI-compatible Chat Completions server: base URL includes /v1, key as a bearer token (optional for
local servers such as Ollama or vLLM). Azure OpenAI (preset azure_openai): the base URL is the deployment URL,
every call carries `?api-version=`, and the key goes in an `api-key` header; both come from the provider's
capabilities (accounts/presets.py), resolved once in the route snapshot."""

from .. import hop

PATHS = {"chat": "/chat/completions", "models": "/models"}


class OpenAIUpstream:
    api = "openai"
    paths = PATHS

    def url(self, provider, operation: str) -> str:
        url = provider.base_url + self.paths[operation]
        version = provider.capabilities.api_version
        return f"{url}?api-version={version}" if version else url

    def headers(self, provider, account, client_headers) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if account.credential:
            auth = provider.capabilities.auth
            if auth == "bearer":
                headers["authorization"] = f"Bearer {account.credential}"
            else:
                headers[auth] = account.credential
        headers.update(provider.extra_headers)
        headers[hop.HEADER] = hop.value(client_headers)  # after extra_headers: a provider setting cannot drop it
        return headers
