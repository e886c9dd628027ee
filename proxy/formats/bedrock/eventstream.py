"""AWS event-stream framing (`application/vnd.amazon.eventstream`), the binary envelope of Bedrock's
InvokeModelWithResponseStream. One message:

    total length (u32) | headers length (u32) | CRC32 of those 8 bytes | headers | payload | CRC32 of all before

each header: name length (u8), name, value type (u8; 7 = string), value length (u16), value; integers are big
endian. Bedrock sends each Messages stream event as an `event` message of type `chunk` whose JSON payload is
`{"bytes": base64(event JSON)}`, and a failure as an `exception` message (`:exception-type`, payload
`{"message": ...}`), which the AWS SDK (and the Anthropic Bedrock SDK on it) raises as an error.
"""

import base64
import struct
import zlib

import orjson

STRING = 7
PRELUDE = struct.Struct(">II")


def message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = PRELUDE.size + 4 + len(encoded) + len(payload) + 4
    prelude = PRELUDE.pack(total, len(encoded))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + bytes([STRING]) + struct.pack(">H", len(raw_value)) + raw_value


def chunk(event_json: bytes) -> bytes:
    """One Messages stream event (its JSON) as Bedrock's `chunk` event."""
    payload = orjson.dumps({"bytes": base64.b64encode(event_json).decode()})
    return message({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload)


def exception(exception_type: str, text: str) -> bytes:
    payload = orjson.dumps({"message": text})
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return message(headers, payload)


class Decoder:
    """Bytes in, (headers, payload) messages out, split anywhere; a CRC mismatch raises ValueError."""

    def __init__(self):
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[dict[str, str], bytes]]:
        self._buffer += data
        out = []
        while len(self._buffer) >= PRELUDE.size:
            total, headers_length = PRELUDE.unpack_from(self._buffer)
            if len(self._buffer) < total:
                break
            raw, self._buffer = self._buffer[:total], self._buffer[total:]
            if _crc(raw, 8, 8) or _crc(raw, len(raw) - 4, len(raw) - 4):
                raise ValueError("event-stream message with a bad CRC")
            start = PRELUDE.size + 4
            out.append((_headers(raw[start : start + headers_length]), raw[start + headers_length : -4]))
        return out


def _crc(raw: bytes, covered: int, at: int) -> bool:
    """True when the CRC32 stored at `at` does not match the first `covered` bytes."""
    return zlib.crc32(raw[:covered]) != struct.unpack_from(">I", raw, at)[0]


def _headers(raw: bytes) -> dict[str, str]:
    headers, at = {}, 0
    while at < len(raw):
        name_length = raw[at]
        name = raw[at + 1 : at + 1 + name_length].decode()
        at += 1 + name_length
        if raw[at] != STRING:
            raise ValueError(f"event-stream header {name} is not a string")
        (value_length,) = struct.unpack_from(">H", raw, at + 1)
        headers[name] = raw[at + 3 : at + 3 + value_length].decode()
        at += 3 + value_length
    return headers


def event_json(headers: dict[str, str], payload: bytes) -> bytes | None:
    """The Messages event inside a `chunk` message (None for any other message)."""
    if headers.get(":message-type") != "event" or headers.get(":event-type") != "chunk":
        return None
    return base64.b64decode(orjson.loads(payload)["bytes"])
