"""Any OpenAI-compatible Chat Completions server: base URL includes /v1, key as a bearer token (optional for
local servers such as Ollama or vLLM). Azure OpenAI (preset azure_openai): the base URL is the deployment URL,
every call carries `?api-version=`, and the key goes in an `api-key` header; both come from the provider's
capabilities (accounts/presets.py), resolved once in the route snapshot. Native batches: the Files and Batches
APIs (upload the JSONL, create the batch for `batch_endpoint`, poll, read the output and error files)."""

import orjson

from .base import BatchResult, Upstream, batch_client

PATHS = {"chat": "/chat/completions", "models": "/models"}
ENDED = ("completed", "failed", "expired", "cancelled")


class OpenAIUpstream(Upstream):
    api = "openai"
    paths = PATHS
    batch_endpoint = "/v1/chat/completions"  # what each line of a batch calls

    def url(self, provider, operation: str) -> str:
        url = provider.base_url + self.paths[operation]
        version = provider.capabilities.api_version
        return f"{url}?api-version={version}" if version else url

    def own_headers(self, provider, account, client_headers) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if account.credential:
            auth = provider.capabilities.auth
            if auth == "bearer":
                headers["authorization"] = f"Bearer {account.credential}"
            else:
                headers[auth] = account.credential
        headers.update(provider.extra_headers)
        return headers

    def batch_submit(self, provider, account, lines: list[tuple[str, dict]]) -> str:
        content = b"".join(orjson.dumps({"custom_id": cid, "method": "POST", "url": self.batch_endpoint,
                                         "body": body}) + b"\n" for cid, body in lines)
        with batch_client(provider) as client:
            uploaded = client.post(f"{provider.base_url}/files", data={"purpose": "batch"},
                                   files={"file": ("batch.jsonl", content, "application/jsonl")},
                                   headers=self.batch_headers(provider, account, json=False))
            uploaded.raise_for_status()
            created = {"input_file_id": uploaded.json()["id"], "endpoint": self.batch_endpoint, "completion_window": "24h"}
            response = client.post(f"{provider.base_url}/batches", headers=self.batch_headers(provider, account),
                                   content=orjson.dumps(created))
            response.raise_for_status()
            return response.json()["id"]

    def batch_poll(self, provider, account, batch_id: str) -> dict | None:
        with batch_client(provider) as client:
            state = client.get(f"{provider.base_url}/batches/{batch_id}", headers=self.batch_headers(provider, account)).json()
        return state if state.get("status") in ENDED else None

    def batch_results(self, provider, account, ended: dict) -> list[BatchResult]:
        out = []
        with batch_client(provider) as client:
            for file_id in (ended.get("output_file_id"), ended.get("error_file_id")):
                if file_id:
                    raw = client.get(f"{provider.base_url}/files/{file_id}/content",
                                     headers=self.batch_headers(provider, account)).content
                    out += [_result(orjson.loads(line)) for line in raw.splitlines() if line.strip()]
        return out

    def batch_cancel(self, provider, account, batch_id: str) -> None:
        with batch_client(provider) as client:
            client.post(f"{provider.base_url}/batches/{batch_id}/cancel", headers=self.batch_headers(provider, account))


def _result(line: dict) -> BatchResult:
    response = line.get("response")
    if response is None:
        code = (line.get("error") or {}).get("code", "")
        return BatchResult(line["custom_id"], "expired" if code == "batch_expired" else "canceled", 0, None)
    status = response.get("status_code", 500)
    return BatchResult(line["custom_id"], "succeeded" if status == 200 else "errored", status, response.get("body"))
