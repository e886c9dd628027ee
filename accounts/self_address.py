"""A provider whose base URL is the gateway's own listening address: every request it serves comes back to the
gateway (issue 21: ANTHROPIC_BASE_URL exported for Claude Code, then `bin/run` from the same shell; or the vLLM
preset's default http://localhost:8000/v1 on a gateway listening on port 8000).

The request path refuses such a loop at its second hop (proxy/hop.py, 508 Loop Detected); this module catches
the configuration before it is used. apply_config, the admin's provider form and the management API warn (a
proxy in front of another port, or a config applied on another machine, can make a match a false alarm);
`start_from_env` refuses, since its environment is the one bin/serve listens with.

The listening address is HOST/PORT as bin/serve reads them (settings.HOST, settings.PORT; 127.0.0.1:8000 by
default). A URL matches on the same port and a host that reaches the listener: the host itself; any loopback
name or address when the gateway listens on loopback or on every address (0.0.0.0, ::); and, for the latter,
this machine's hostname. No DNS lookup is made.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

WILDCARDS = ("", "0.0.0.0", "::")


def is_self(base_url: str, host: str | None = None, port: int | None = None) -> bool:
    listen_host = (settings.HOST if host is None else host).strip("[]").lower()
    listen_port = settings.PORT if port is None else port
    parts = urlsplit(base_url or "")
    try:
        url_port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number: not an address at all
        return False
    url_host = (parts.hostname or "").lower()
    if not url_host or url_port != listen_port:
        return False
    wildcard = listen_host in WILDCARDS
    if url_host == listen_host:
        return True
    if _local(url_host):
        return wildcard or _local(listen_host)
    return wildcard and url_host == socket.gethostname().lower()


def warning(name: str, base_url: str) -> str | None:
    """What to tell an operator about provider `name`, or None when its URL is not the gateway's own."""
    if not is_self(base_url):
        return None
    return (
        f"provider {name!r}: base URL {base_url} is this gateway's own address ({settings.HOST}:{settings.PORT}), "
        "so its requests would come back to the gateway (refused as 508 Loop Detected); give the real upstream's "
        "URL (for ANTHROPIC_BASE_URL exported for Claude Code: unset it before starting the gateway)"
    )


def environment_problems(document: dict) -> list[str]:
    """start_from_env's refusal: a warning for each provider of the environment's document that is the gateway."""
    providers = document.get("providers") or []
    return [w for p in providers if (w := warning(p.get("name", ""), p.get("base_url") or ""))]


def _local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified  # 0.0.0.0 as a destination is this machine
