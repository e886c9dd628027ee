"""Claude on Google Vertex AI: Anthropic's Messages API behind Vertex's rawPredict, with an OAuth2 access token
made from a service-account key by google-auth.

    chat           POST {prefix}/publishers/anthropic/models/{model}:rawPredict  (stream: :streamRawPredict,
                   whose SSE is Anthropic's own)
    count_tokens   POST {prefix}/publishers/anthropic/models/count-tokens:rawPredict  (the body keeps `model`)
The body is the Messages body without `model` (it is in the path), with `anthropic_version: vertex-2023-10-16`;
accepted `anthropic-beta` values travel as the header. {prefix} is the base URL when it names a project
(https://REGION-aiplatform.googleapis.com/v1/projects/P/locations/REGION), else the base URL plus
/v1/projects/{the key's project_id}/locations/{the host's region, or global for aiplatform.googleapis.com}.

The account credential is the service-account JSON key. Its access token (scope cloud-platform) is kept per
account in this process and refreshed only when it is missing or within REFRESH_MARGIN of expiry; the refresh
(a call to the key's token_uri) runs in a worker thread, never on the event loop. A 401 (a token revoked or
expired early) costs one refresh and one resend, the shape proxy/attempts.py gives OAuth accounts; a refresh
that fails is an authentication error, so the retry loop cools the account down and fails over.
"""

import asyncio
import datetime
import hashlib
import threading

import httpx
import orjson
import urllib3
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.urllib3 import Request
from google.oauth2 import service_account

from ..errors import UpstreamError
from .anthropic import accepted_betas
from .base import Upstream

VERSION = "vertex-2023-10-16"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
MODELS = "/publishers/anthropic/models/"
PATHS = {"chat": MODELS + "{model}:rawPredict", "stream": MODELS + "{model}:streamRawPredict",
         "count_tokens": MODELS + "count-tokens:rawPredict"}  # fmt: skip
REFRESH_MARGIN = datetime.timedelta(minutes=5)
TOKEN_TIMEOUT = urllib3.Timeout(connect=10.0, read=30.0)

_credentials: dict[int, tuple[str, service_account.Credentials]] = {}  # account id -> (key fingerprint, creds)
_locks: dict[int, threading.Lock] = {}
_pool = urllib3.PoolManager(timeout=TOKEN_TIMEOUT)


class VertexUpstream(Upstream):
    api = "anthropic"
    paths = PATHS

    def own_headers(self, provider, account, client_headers) -> dict[str, str]:
        headers = {"content-type": "application/json", "authorization": f"Bearer {token(account)}"}
        beta = accepted_betas(client_headers.get("anthropic-beta"), provider.capabilities.anthropic_betas)
        if beta:
            headers["anthropic-beta"] = beta
        headers.update(provider.extra_headers)
        return headers

    def request(self, provider, account, client_headers, payload: dict, operation: str = "chat"):
        path = "stream" if payload.get("stream") and operation == "chat" else operation
        body = {**payload, "anthropic_version": VERSION}
        if operation == "chat":
            body.pop("model", None)
        url = prefix(provider.base_url, account) + self.paths[path].format(model=payload.get("model", ""))
        return url, self.headers(provider, account, client_headers), orjson.dumps(body)

    async def send(self, provider, account, client_headers, payload: dict, operation: str = "chat") -> httpx.Response:
        """A token made beforehand, off the loop, when the cached one will not do; on a 401 one refresh and one
        resend."""
        used = token(account) if fresh(account) else await asyncio.to_thread(token, account)
        response = await super().send(provider, account, client_headers, payload, operation)
        if response.status_code != 401:
            return response
        await response.aclose()
        await asyncio.to_thread(token, account, used)
        return await super().send(provider, account, client_headers, payload, operation)


def prefix(base_url: str, account) -> str:
    if "/projects/" in base_url:
        return base_url
    host = httpx.URL(base_url).host
    region = host.split("-aiplatform.", 1)[0] if "-aiplatform." in host else "global"
    return f"{base_url}/v1/projects/{_creds(account).project_id}/locations/{region}"


def fresh(account) -> bool:
    """Whether the cached token serves a call as it is (no refresh, no network)."""
    entry = _credentials.get(account.id)
    if entry is None or entry[0] != _fingerprint(account.credential):
        return False
    creds = entry[1]
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # google-auth keeps naive UTC
    return bool(creds.token) and creds.expiry is not None and creds.expiry - now > REFRESH_MARGIN


def token(account, refused: str = "") -> str:
    """The account's access token, refreshed first when it is not fresh or is the one just `refused` (a 401).
    May call the token endpoint: from the event loop, only through asyncio.to_thread."""
    creds = _creds(account)
    if fresh(account) and not refused:  # the common case: no lock, so the event loop never waits on a refresh
        return creds.token
    with _locks.setdefault(account.id, threading.Lock()):  # one refresh per account at a time
        if not fresh(account) or (refused and creds.token == refused):
            try:
                creds.refresh(Request(_pool))
            except GoogleAuthError as e:
                raise UpstreamError(f"Vertex token refresh failed: {_first_line(e)}", kind="authentication",
                                    status=401) from None
    return creds.token


def _creds(account) -> service_account.Credentials:
    fingerprint = _fingerprint(account.credential)
    entry = _credentials.get(account.id)
    if entry is None or entry[0] != fingerprint:
        try:
            info = orjson.loads(account.credential)
            creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as e:
            raise UpstreamError(f"Vertex credential: a service-account JSON key is needed ({_first_line(e)})",
                                kind="authentication", status=401) from None
        entry = _credentials[account.id] = (fingerprint, creds)
    return entry[1]


def _fingerprint(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
