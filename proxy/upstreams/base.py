"""The provider interface: everything the gateway does with an upstream goes through one `Upstream`.

    api                       the wire format it speaks (a proxy.formats name): what the body looks like
    url(provider, operation)  where an operation ("chat", "count_tokens", "models") goes
    headers(provider, account, client_headers)   how a call is signed: the kind's own_headers, then the hop
                              header (proxy/hop.py) and, when tracing, the attempt's traceparent (usage/tracing.py),
                              last, so neither a kind nor extra_headers can drop them
    payload(ingress, body, options, chat)        the upstream body for a caller's body: the ONE payload builder,
                              used by live traffic (proxy/attempts.py) and native batches (batches/native.py)
    request(provider, account, client_headers, payload, operation)
                              (URL, headers, body bytes) of one call: what send() sends and what the connection
                              check (proxy/checks.py) probes with; a kind whose URL depends on the body (the model
                              in the path) or whose signature covers the bytes overrides this one method
    send(...)                 one call, answered as an httpx.Response whose body is still to read: the retry
                              loop reads it whole for a complete answer, or relays it as a stream; a kind whose
                              answers are not Anthropic's or OpenAI's bytes (another stream framing, another
                              error shape) overrides send to hand back a Response in its `api`'s wire format
    batch_submit / batch_poll / batch_results / batch_cancel
                              the provider's own batch API, for a provider whose preset says supports_batches
                              (sync: they run in Celery tasks)

A kind overrides only what differs from these defaults: a JSON POST to url() with headers(). Payload shape
belongs to proxy.formats (pure translators); an Upstream only wraps it (an envelope, a field the provider wants).
"""

from dataclasses import dataclass

import httpx
import orjson

from usage import tracing

from .. import formats, hop
from ..errors import UpstreamError
from . import http


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One item of an ended upstream batch. kind: succeeded | errored | canceled | expired."""

    custom_id: str
    kind: str
    status: int  # the item's HTTP status (0 when it never ran)
    body: dict | None  # the answer (succeeded) or the error object (errored), in the upstream's format


class Upstream:
    api = ""  # a proxy.formats name
    paths: dict[str, str] = {}

    def url(self, provider, operation: str) -> str:
        return provider.base_url + self.paths[operation]

    def headers(self, provider, account, client_headers) -> dict[str, str]:
        headers = self.own_headers(provider, account, client_headers)
        headers[hop.HEADER] = hop.value(client_headers)  # every upstream call builds its headers here
        tracing.inject(headers)  # the attempt's traceparent, when tracing is on (usage/tracing.py)
        return headers

    def own_headers(self, provider, account, client_headers) -> dict[str, str]:
        raise NotImplementedError

    def payload(self, ingress, body: dict, options, chat=None):
        """(canonical request or None, upstream body). Same API on both sides: the caller's body passes through
        (pass-through, both ways); otherwise `chat` (parsed already, or parsed here) is rendered for this API."""
        if self.api == ingress.NAME:
            return None, ingress.passthrough_request(body, options)
        chat = chat or ingress.parse_request(body)
        return chat, formats.get(self.api).render_request(chat, options)

    def request(self, provider, account, client_headers, payload: dict, operation: str = "chat"):
        """(URL, headers, body bytes) of one call."""
        return self.url(provider, operation), self.headers(provider, account, client_headers), orjson.dumps(payload)

    async def send(self, provider, account, client_headers, payload: dict, operation: str = "chat") -> httpx.Response:
        """One upstream call, with the headers received and the body still to read. A transport failure (no
        connection, a timeout) raises UpstreamError; an HTTP error status is returned for the loop to classify."""
        url, headers, content = self.request(provider, account, client_headers, payload, operation)
        client = http.client()
        request = client.build_request(
            "POST", url, content=content, headers=headers,
            timeout=http.timeout(provider.connect_timeout, provider.read_timeout),
        )
        try:
            return await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            kind, status, what = http.describe(exc)
            raise UpstreamError(f"upstream {provider.name} {what}", kind=kind, status=status) from None

    # -- native batches (batches/native.py); a kind without a batch API keeps these refusals --

    def batch_submit(self, provider, account, lines: list[tuple[str, dict]]) -> str:
        """Submit (custom id, payload) lines as one upstream batch; returns the upstream's batch id."""
        raise NotImplementedError(f"{type(self).__name__} has no batch API")

    def batch_poll(self, provider, account, batch_id: str) -> dict | None:
        """The upstream batch's state once it has ended (what batch_results needs); None while it runs."""
        raise NotImplementedError(f"{type(self).__name__} has no batch API")

    def batch_results(self, provider, account, ended: dict) -> list[BatchResult]:
        raise NotImplementedError(f"{type(self).__name__} has no batch API")

    def batch_cancel(self, provider, account, batch_id: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no batch API")

    def batch_headers(self, provider, account, json: bool = True) -> dict[str, str]:
        headers = self.headers(provider, account, {})
        if not json:
            headers.pop("content-type", None)
        return headers


def batch_client(provider) -> httpx.Client:
    """A short-lived client for a Celery task's batch calls (the request path's pool belongs to its event loop)."""
    return httpx.Client(timeout=httpx.Timeout(provider.read_timeout, connect=provider.connect_timeout),
                        headers=http.UPSTREAM_HEADERS)
