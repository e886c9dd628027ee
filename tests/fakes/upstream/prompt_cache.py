"""Provider prompt caching, simulated, so that savings can be measured (python -m bench.replay_savings): the fake
remembers the prompt prefixes it has seen and reports the part of a new prompt it could have read from a cache
in each wire format's usage (Anthropic cache_read/cache_creation_input_tokens, OpenAI cached_tokens, Responses
input_tokens_details.cached_tokens). Off unless the fake is started with `prompt_cache=True` or a request
carries `x-fake-prompt-cache: 1`; a request's `USAGE:` line still wins.

The prompt is a sequence of blocks, in the order the provider reads it: tools, then system, then each message's
content blocks (Anthropic), or tools, then each message (OpenAI Chat and Responses). Tokens are estimated as
serialized JSON bytes / 4, like the fake's default input count.

- Anthropic (explicit): a block with `cache_control` is a breakpoint. The longest prefix ending at any block
  boundary that an earlier request wrote is read (the provider looks back from each breakpoint); the prefix up
  to the last breakpoint is written (cache_creation) beyond what was read. Prefixes under MIN_TOKENS are never
  cached. Every block counts, Claude Code's per-request billing line in `system` included.
- OpenAI-compatible (automatic): every request's prefixes are stored; the longest stored prefix is read, in
  steps of STEP tokens, when it is at least MIN_TOKENS. Nothing is reported as written.
Entries never expire within a run (sessions replay in seconds; providers keep them 5 minutes or more).
"""

import hashlib
import threading

import orjson

MIN_TOKENS = 1024
STEP = 128


class PromptCache:
    def __init__(self) -> None:
        self.seen: set[tuple[str, bytes]] = set()
        self.lock = threading.Lock()

    def usage(self, api: str, body: dict, default: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """(uncached input, output, cache read, cache write) for this request; `default` gives total input (its
        first item) and output."""
        total, out = default[0] + default[2] + default[3], default[1]
        blocks, marked = _blocks(api, body)
        sizes = [len(b) // 4 for b in blocks]
        digests = _prefix_digests(blocks)
        scope = str(body.get("model"))
        with self.lock:
            marks = [i for i, m in enumerate(marked) if m]
            last = marks[-1] if marks else (-1 if api == "anthropic" else len(blocks) - 1)  # reads end at a mark
            read = max((sum(sizes[: i + 1]) for i, d in enumerate(digests[: last + 1]) if (scope, d) in self.seen),
                       default=0)  # fmt: skip
            if api == "anthropic":
                written = sum(sizes[: marks[-1] + 1]) if marks else 0
                write = written - read if written >= MIN_TOKENS and written > read else 0
                for i in marks:
                    if sum(sizes[: i + 1]) >= MIN_TOKENS:
                        self.seen.add((scope, digests[i]))
            else:
                read = read // STEP * STEP if read >= MIN_TOKENS else 0
                write = 0
                self.seen.update((scope, d) for d in digests)
        read = min(read, total)
        write = min(write, total - read)
        return total - read - write, out, read, write


def _blocks(api: str, body: dict) -> tuple[list[bytes], list[bool]]:
    """The prompt's blocks serialized without their cache_control (a marker is not content: moving it does not
    change the prefix), and which of them carried one."""
    parts = list(body.get("tools") or [])
    if api == "anthropic":
        system = body.get("system")
        parts += [system] if isinstance(system, str) else list(system or [])
        for message in body.get("messages") or []:
            content = message.get("content")
            parts += [[message.get("role"), part] for part in (content if isinstance(content, list) else [content])]
        out = [_unmarked(p) for p in parts]
        return [b for b, _ in out], [m for _, m in out]
    if isinstance(body.get("instructions"), str):
        parts.append(body["instructions"])
    items = body.get("messages") if "messages" in body else body.get("input")
    parts += [items] if isinstance(items, str) else list(items or [])
    return [orjson.dumps(p) for p in parts], [False] * len(parts)


def _unmarked(part) -> tuple[bytes, bool]:
    block = part[1] if isinstance(part, list) else part
    if not isinstance(block, dict):
        return orjson.dumps(part), False
    marked = "cache_control" in block
    clean = {k: v for k, v in block.items() if k != "cache_control"}
    if isinstance(clean.get("content"), list):  # a tool_result's own blocks
        inner = clean["content"]
        marked = marked or any(isinstance(b, dict) and "cache_control" in b for b in inner)
        clean["content"] = [{k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b for b in inner]
    return orjson.dumps([part[0], clean] if isinstance(part, list) else clean), marked


def _prefix_digests(blocks: list[bytes]) -> list[bytes]:
    h, out = hashlib.blake2b(digest_size=16), []
    for block in blocks:
        h.update(len(block).to_bytes(4, "little"))
        h.update(block)
        out.append(h.copy().digest())
    return out
