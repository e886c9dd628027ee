"""Anthropic's API (and Anthropic-compatible endpoints): base URL without /v1, key in x-api-key (or a bearer
token when the preset's `auth` capability says so, or the account is an OAuth one: Bearer plus OAUTH_BETA).
`anthropic-beta` values the provider does not accept
(capability `anthropic_betas`, a list; null forwards every value) are dropped, never sent. Native batches: the
Message Batches API (one POST of every request, poll until `ended`, read the results JSONL)."""

import orjson

from .base import BatchResult, Upstream, batch_client

DEFAULT_VERSION = "2023-06-01"
OAUTH_BETA = "oauth-2025-04-20"  # what an OAuth bearer token needs (accounts/oauth.py)
PATHS = {"chat": "/v1/messages", "count_tokens": "/v1/messages/count_tokens", "models": "/v1/models",
         "batches": "/v1/messages/batches"}  # fmt: skip


class AnthropicUpstream(Upstream):
    api = "anthropic"
    paths = PATHS

    def own_headers(self, provider, account, client_headers) -> dict[str, str]:
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

    def batch_submit(self, provider, account, lines: list[tuple[str, dict]]) -> str:
        body = {"requests": [{"custom_id": cid, "params": params} for cid, params in lines]}
        with batch_client(provider) as client:
            response = client.post(self.url(provider, "batches"), content=orjson.dumps(body),
                                   headers=self.batch_headers(provider, account))
            response.raise_for_status()
            return response.json()["id"]

    def batch_poll(self, provider, account, batch_id: str) -> dict | None:
        with batch_client(provider) as client:
            state = client.get(f"{self.url(provider, 'batches')}/{batch_id}",
                               headers=self.batch_headers(provider, account)).json()
        return state if state.get("processing_status") == "ended" else None

    def batch_results(self, provider, account, ended: dict) -> list[BatchResult]:
        with batch_client(provider) as client:
            raw = client.get(ended["results_url"], headers=self.batch_headers(provider, account)).content
        return [_result(orjson.loads(line)) for line in raw.splitlines() if line.strip()]

    def batch_cancel(self, provider, account, batch_id: str) -> None:
        with batch_client(provider) as client:
            client.post(f"{self.url(provider, 'batches')}/{batch_id}/cancel", headers=self.batch_headers(provider, account))


def _result(line: dict) -> BatchResult:
    result = line["result"]
    if result["type"] == "succeeded":
        return BatchResult(line["custom_id"], "succeeded", 200, result["message"])
    if result["type"] == "errored":
        error_type = (result.get("error") or {}).get("error", {}).get("type", "api_error")
        return BatchResult(line["custom_id"], "errored", 400 if error_type == "invalid_request_error" else 500,
                           result.get("error"))
    return BatchResult(line["custom_id"], result["type"], 0, None)


def accepted_betas(header: str | None, accepted: tuple[str, ...] | None) -> str:
    if not header or accepted is None:
        return header or ""
    return ",".join(v for v in (value.strip() for value in header.split(",")) if v in accepted)
