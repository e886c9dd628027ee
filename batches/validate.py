"""Every item of a batch is checked up front, as a live request would be, before anything is stored: its body
parses in its API (proxy.formats), its model routes for the batch's key, its custom_id is well formed and unique.
The first bad item refuses the whole batch with an InvalidRequest naming the item's custom_id (and the OpenAI
input file's line), so nothing half-valid ever runs. Pure functions over dicts: no database, no I/O.

Limits (settings GATEWAY_BATCH_MAX_ITEMS / GATEWAY_BATCH_MAX_BYTES) follow the big providers: 100,000 requests
and 256 MB per batch.
"""

import re
from dataclasses import dataclass

import orjson
from django.conf import settings

from proxy import formats
from proxy.errors import GatewayError, InvalidRequest, RequestTooLarge

ANTHROPIC_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
OPENAI_ENDPOINTS = ("/v1/chat/completions",)


@dataclass(slots=True)
class Item:
    custom_id: str
    body: dict


@dataclass(slots=True)
class BadItem:
    """Where the first bad item is: OpenAI reports it as an error of a failed batch (code, line, param)."""

    custom_id: str | None
    line: int | None
    message: str
    param: str | None
    code: str = "invalid_request"


def max_items() -> int:
    return settings.GATEWAY_BATCH_MAX_ITEMS


def max_bytes() -> int:
    return settings.GATEWAY_BATCH_MAX_BYTES


def anthropic_requests(body: dict, snapshot, key) -> list[Item]:
    """`{"requests": [{"custom_id", "params"}]}` as POST /v1/messages/batches takes it."""
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise InvalidRequest("requests: a non-empty list of {custom_id, params} is required", param="requests")
    _check_count(len(requests))
    items, seen = [], set()
    for i, entry in enumerate(requests):
        if not isinstance(entry, dict):
            raise InvalidRequest(f"requests.{i}: must be an object with custom_id and params", param=f"requests.{i}")
        custom_id = entry.get("custom_id")
        if not isinstance(custom_id, str) or not ANTHROPIC_CUSTOM_ID.match(custom_id):
            raise InvalidRequest(f"requests.{i}.custom_id: must be 1 to 64 letters, digits, '-' or '_'",
                                 param=f"requests.{i}.custom_id")
        _check_unique(custom_id, seen, f"requests.{i}.custom_id")
        params = entry.get("params")
        problem = item_problem("anthropic", params, snapshot, key)
        if problem:
            raise InvalidRequest(f"requests.{i} (custom_id {custom_id!r}): {problem.message}",
                                 param=f"requests.{i}.params" + (f".{problem.param}" if problem.param else ""))
        items.append(Item(custom_id, _without_stream(params)))
    return items


def openai_lines(content: bytes, endpoint: str, snapshot, key) -> list[Item] | BadItem:
    """An OpenAI batch input file: one `{custom_id, method, url, body}` JSON object a line."""
    if len(content) > max_bytes():
        raise RequestTooLarge(f"input file is {len(content)} bytes; a batch takes at most {max_bytes()}")
    lines = [line for line in content.splitlines() if line.strip()]
    if not lines:
        return BadItem(None, None, "the input file has no requests", None, code="empty_file")
    _check_count(len(lines))
    items, seen = [], set()
    for number, raw in enumerate(lines, start=1):
        bad = _openai_line(raw, number, endpoint, snapshot, key, seen)
        if isinstance(bad, BadItem):
            return bad
        items.append(bad)
    return items


def _openai_line(raw: bytes, number: int, endpoint: str, snapshot, key, seen: set) -> Item | BadItem:
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return BadItem(None, number, f"line {number} is not valid JSON", None, code="invalid_json_line")
    if not isinstance(entry, dict):
        return BadItem(None, number, f"line {number} is not a JSON object", None, code="invalid_json_line")
    custom_id = entry.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
        return BadItem(None, number, f"line {number}: custom_id must be a non-empty string", "custom_id")
    if custom_id in seen:
        return BadItem(custom_id, number, f"line {number}: duplicate custom_id {custom_id!r}", "custom_id",
                       code="duplicate_custom_id")
    seen.add(custom_id)
    if entry.get("method", "POST") != "POST" or entry.get("url") != endpoint:
        return BadItem(custom_id, number, f"line {number} (custom_id {custom_id!r}): method must be POST and url "
                       f"{endpoint}, the batch's endpoint", "url", code="mismatched_endpoint")
    problem = item_problem("openai", entry.get("body"), snapshot, key)
    if problem:
        return BadItem(custom_id, number, f"line {number} (custom_id {custom_id!r}): {problem.message}",
                       f"body.{problem.param}" if problem.param else "body")
    return Item(custom_id, _without_stream(entry["body"]))


def simple_requests(body: dict, snapshot, key) -> tuple[str, list[Item]]:
    """POST /v1/batch: `{"api": "openai" | "anthropic", "requests": [{"custom_id"?, "body"}]}`."""
    api = body.get("api", "openai")
    if api not in ("openai", "anthropic"):
        raise InvalidRequest("api: must be 'openai' or 'anthropic'", param="api")
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise InvalidRequest("requests: a non-empty list of {custom_id, body} is required", param="requests")
    _check_count(len(requests))
    items, seen = [], set()
    for i, entry in enumerate(requests):
        entry = entry if isinstance(entry, dict) else {}
        custom_id = entry.get("custom_id", f"request-{i}")
        if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
            raise InvalidRequest(f"requests.{i}.custom_id: must be a non-empty string", param=f"requests.{i}.custom_id")
        _check_unique(custom_id, seen, f"requests.{i}.custom_id")
        problem = item_problem(api, entry.get("body"), snapshot, key)
        if problem:
            raise InvalidRequest(f"requests.{i} (custom_id {custom_id!r}): {problem.message}",
                                 param=f"requests.{i}.body" + (f".{problem.param}" if problem.param else ""))
        items.append(Item(custom_id, _without_stream(entry["body"])))
    return api, items


def item_problem(api: str, body, snapshot, key) -> GatewayError | None:
    """What a live request with this body would be refused for before reaching an upstream, or None."""
    if not isinstance(body, dict):
        return InvalidRequest("must be a JSON object (the chat request)")
    if not isinstance(body.get("messages"), list):
        return InvalidRequest("messages: Field required (a list of messages)", param="messages")
    try:
        formats.get(api).parse_request(body)
        snapshot.resolve(key, body.get("model"))
    except GatewayError as err:
        return err
    return None


def _check_count(count: int) -> None:
    if count > max_items():
        raise InvalidRequest(f"a batch takes at most {max_items()} requests, this one has {count}", param="requests")


def _check_unique(custom_id: str, seen: set, param: str) -> None:
    if custom_id in seen:
        raise InvalidRequest(f"{param}: duplicate custom_id {custom_id!r}; each request needs its own", param=param)
    seen.add(custom_id)


def _without_stream(body: dict) -> dict:
    """An item's answer is stored whole: a `stream` flag would only make the core build SSE to be read back."""
    return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
