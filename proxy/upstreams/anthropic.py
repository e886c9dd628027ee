"""Anthropic's API (and Anthropic-compatible endpoints): base URL without /v1, key in x-api-key (or a bearer
token when the preset's `auth` capability says so, or the account is an OAuth one: Bearer plus OAUTH_BETA).
`anthropic-beta` values the provider does not accept
(capability `anthropic_betas`, a list; null forwards every value) are dropped, never sent."""

DEFAULT_VERSION = "2023-06-01"
OAUTH_BETA = "oauth-2025-04-20"  # what an OAuth bearer token needs (accounts/oauth.py)
PATHS = {"chat": "/v1/messages", "count_tokens": "/v1/messages/count_tokens", "models": "/v1/models"}


class AnthropicUpstream:
    api = "anthropic"

    def url(self, provider, operation: str) -> str:
        return provider.base_url + PATHS[operation]

    def headers(self, provider, account, client_headers) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "anthropic-version": client_headers.get("anthropic-version") or DEFAULT_VERSION,
        }
        # Betas only make sense for a request that came from an Anthropic client (pass-through); they enable
        # the beta fields in its body, so they travel together (docs/translation.md §1.1).
        beta = accepted_betas(client_headers.get("anthropic-beta"), provider.capabilities.anthropic_betas)
        if account.kind == "anthropic_oauth":
            beta = beta if OAUTH_BETA in beta.split(",") else ",".join(filter(None, (OAUTH_BETA, beta)))
        if beta:
            headers["anthropic-beta"] = beta
        if account.credential:
            if provider.capabilities.auth == "bearer" or account.kind == "anthropic_oauth":
                headers["authorization"] = f"Bearer {account.credential}"
            else:
                headers["x-api-key"] = account.credential
        headers.update(provider.extra_headers)
        return headers


def accepted_betas(header: str | None, accepted: tuple[str, ...] | None) -> str:
    if not header or accepted is None:
        return header or ""
    return ",".join(v for v in (value.strip() for value in header.split(",")) if v in accepted)
