"""Refuse API requests at their headers under daphne, before any of the body is taken in.

Daphne (twisted) reads a request's whole body (into a temporary file) before the ASGI app sees the request, and
then puts all of it on the app's queue at once: a 320 MB body with no key cost seconds and ~300 MB of memory
before the app could say 401. The ASGI handler (gateway_site/asgi.py) refuses from the headers too, but under
daphne that is too late, so this guard hooks twisted's request at the point its headers are complete
(`gotLength`) and while body bytes arrive (`handleContentChunk`):

- what proxy.auth.precheck refuses without a database lookup (no key, a malformed one, a key this process already
  knows is bad, a throttled address), and a Content-Length over GATEWAY_MAX_BODY_BYTES, is answered at once in the
  caller's format and nothing of the body is kept;
- a key the process does not know yet, on a request whose body may be large (chunked, or over
  LOOKUP_ABOVE_BYTES), and any key on a WebSocket upgrade, is looked up with the connection paused: nothing more
  is read (and no socket opened) until the key is good;
- a body that grows past the limit without a Content-Length (chunked) is answered 413 the moment it does.

A refused connection is closed after a short drain (LINGER_SECONDS, discarding what arrives): closing a socket
with unread bytes makes the kernel reset it, and a client still sending would then lose the answer. The ASGI
handler authenticates again before the app reads the body (a cache hit by then).

uvicorn needs none of this: it hands the body to the app as it arrives, with flow control.
"""

import asyncio
import logging

from twisted.internet import reactor

from proxy import api as proxy_api
from proxy import auth
from proxy.errors import GatewayError, body_limit
from proxy.errors import too_large as make_too_large

log = logging.getLogger(__name__)

LINGER_SECONDS = 1.0
# A key not yet known is looked up before the body is read when the body may be larger than this (chunked, or a
# Content-Length above it); a smaller one arrives with the headers anyway, and pausing would only cost time.
LOOKUP_ABOVE_BYTES = 64 * 1024


_security_headers = None  # scope -> [(name, value)]: the headers every API answer carries (gateway_site/asgi.py)


def install(is_api_path, security_headers) -> None:
    """Patch daphne's request class once; `is_api_path(path)` says which paths need a key, and
    `security_headers(scope)` what a refusal carries like any other answer."""
    global _security_headers
    from daphne.http_protocol import WebRequest

    _security_headers = security_headers
    if getattr(WebRequest, "_gatehouse_guard", False):
        return
    got_length, handle_chunk, process = WebRequest.gotLength, WebRequest.handleContentChunk, WebRequest.process
    request_received = WebRequest.requestReceived

    def guarded_got_length(self, length):
        self._gh_refused, self._gh_size, self._gh_path, self._gh_lookup = False, 0, None, None
        got_length(self, length)
        try:
            path = self.channel._path.split(b"?", 1)[0].decode("latin-1")
        except Exception:
            return  # daphne's own checks answer a malformed request line
        if not is_api_path(path):
            return
        self._gh_path, self._gh_limit = path, body_limit(path)
        headers = _headers(self)
        refusal = auth.precheck(headers, _client(self, headers), known_bad=True)
        if refusal is not None:
            _refuse(self, headers, refusal)
            return
        too_large = None
        if length is not None and length > self._gh_limit:
            too_large = make_too_large(self._gh_limit)
        may_be_large = length is None or length > LOOKUP_ABOVE_BYTES
        if (may_be_large and not auth.known_good(headers)) or _upgrade(headers):
            _look_up_first(self, headers, too_large)  # the key's 401 before the size's 413
        elif too_large is not None:
            _refuse(self, headers, too_large)

    def guarded_handle_chunk(self, data):
        if self._gh_refused:
            return  # drained, never kept
        self._gh_size += len(data)
        if self._gh_path is not None and self._gh_size > self._gh_limit:
            _refuse(self, _headers(self), make_too_large(self._gh_limit))
            return
        handle_chunk(self, data)

    def guarded_request_received(self, command, path, version):
        # Twisted parses form bodies here and answers a malformed multipart body with a bare, headerless 400.
        # The API reads JSON whatever the content type says, so the header is hidden from twisted and put back
        # for the app (guarded_process).
        self._gh_content_type = None
        if getattr(self, "_gh_path", None) is not None:
            self._gh_content_type = self.requestHeaders.getRawHeaders(b"content-type")
            self.requestHeaders.removeHeader(b"content-type")
        return request_received(self, command, path, version)

    def guarded_process(self):
        if getattr(self, "_gh_refused", False):
            _close(self)  # the whole body arrived while draining: nothing left to wait for
            return None
        lookup = getattr(self, "_gh_lookup", None)
        if lookup is not None and not lookup.done():  # a request without a body (an upgrade): wait for its key
            lookup.add_done_callback(lambda _: guarded_process(self))  # after _look_up_first's own callback
            return None
        if getattr(self, "_gh_content_type", None):
            self.requestHeaders.setRawHeaders(b"content-type", self._gh_content_type)
        return process(self)

    WebRequest.gotLength = guarded_got_length
    WebRequest.handleContentChunk = guarded_handle_chunk
    WebRequest.requestReceived = guarded_request_received
    WebRequest.process = guarded_process
    WebRequest._gatehouse_guard = True


def _look_up_first(request, headers: dict[str, str], too_large) -> None:
    """Stop reading the connection while the key is looked up; then refuse (a bad key, or `too_large` if not None),
    or read on."""
    network = request.channel._networkProducer
    network.pauseProducing()
    task = request._gh_lookup = asyncio.ensure_future(auth.authenticate_request(headers, _client(request, headers)))

    def looked_up(task):
        error = None if task.cancelled() else task.exception()
        if request.channel is None:  # the client went away meanwhile
            return
        if isinstance(error, GatewayError) or (error is None and too_large is not None):
            _refuse(request, headers, error or too_large)
        elif error is not None:
            log.error("key lookup failed before reading a body", exc_info=error)  # the app will try again
        network.resumeProducing()  # read on (or drain, when refused)

    task.add_done_callback(looked_up)


def _upgrade(headers: dict[str, str]) -> bool:
    """A WebSocket upgrade (proxy/ws.py): its key is checked here (a cache hit for a known key; once per
    connection), so a bad, revoked or expired one gets the HTTP refusal in the caller's format rather than a
    socket the application accepts only to refuse."""
    return headers.get("upgrade", "").lower() == "websocket"


def _headers(request) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): values[0].decode("latin-1")
        for name, values in request.requestHeaders.getAllRawHeaders()
    }


def _client(request, headers: dict[str, str]) -> str | None:
    """The address the ASGI scope will carry: daphne --proxy-headers takes it from X-Forwarded-For."""
    if request.server.proxy_forwarded_address_header:
        forwarded = headers.get(request.server.proxy_forwarded_address_header.lower(), "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    peer = request.channel.transport.getPeer()
    return getattr(peer, "host", None)


def _refuse(request, headers: dict[str, str], err) -> None:
    request._gh_refused = True
    request.requestHeaders.removeHeader(b"expect")  # no "100 Continue" after the answer
    response = proxy_api.error_response(request._gh_path, headers, err)
    head = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
    head += [f"{name}: {value}" for name, value in response.items()]
    head += [f"{name}: {value}" for name, value in _security_headers({"scheme": "https" if request.isSecure() else "http"})]
    head += [f"Content-Length: {len(response.content)}", "Connection: close", "", ""]
    request.channel.transport.write("\r\n".join(head).encode("latin-1") + response.content)
    reactor.callLater(LINGER_SECONDS, _close, request)


def _close(request) -> None:
    transport = request.channel.transport if request.channel else None
    if transport is not None and transport.connected:
        transport.loseConnection()
