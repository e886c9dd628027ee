"""`python -m bench.replay_savings`: what each cost-optimization layer saves on recorded client sessions.
Development tooling, run from a checkout (it needs the fake upstream and the sessions in tests/): not part of the
installed package.

Each session in tests/fixtures/sessions (recorded with the real Claude Code, aider and Codex CLIs: record_*.py; and
two built from the captures' shapes by build.py, one with Claude Code's background haiku calls) is replayed request
by request through the request core (`proxy.core.run_to_end`, in this process: the same path as an HTTP request
after the body is read) to the fake upstream with its provider prompt-cache simulation on
(tests/fakes/upstream/prompt_cache.py), once with no layer, once per layer alone and once with all of them
(--tool-description-chars and --drop-tools set the tools layer, which changes what the model is told about its
tools); each replay starts with an empty provider cache. Two upstreams each: Anthropic (Claude Code passes through,
aider is translated) and OpenAI-compatible (Claude Code is translated, aider passes through); Codex's Responses
requests are translated to both (Messages, Chat). The table gives input tokens sent upstream, of which read from the
provider's cache / written to it / uncached, and the cost from the ledger rows (prices below), against no layer.

Nothing is written to the database: routes, prices and the key live in memory, ledger rows are collected.
"""

import asyncio
import copy
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
D = Decimal
# remote model: input, output, cache read, cache write ($/Mtok), list prices of the models they stand for
PRICES = {
    "fake-sonnet": (D(3), D(15), D("0.30"), D("3.75")),
    "fake-haiku": (D(1), D(5), D("0.10"), D("1.25")),
    "fake-gpt": (D(2), D(8), D("0.50"), D(0)),
    "fake-gpt-mini": (D("0.40"), D("1.60"), D("0.10"), D(0)),
    "fake-small": (D("0.10"), D("0.40"), D("0.025"), D(0)),
}
MODELS = {  # upstream kind -> (strong model, haiku stand-in)
    "anthropic": ("fake-sonnet", "fake-haiku"),
    "openai": ("fake-gpt", "fake-gpt-mini"),
}
TOOL_DESCRIPTION_CHARS = 500  # about a tool's first paragraph: what it does (README: the saving at other caps)


def layers(tool_chars: int = TOOL_DESCRIPTION_CHARS, drop_tools: tuple = ()) -> list[tuple[str, dict]]:
    """(name, settings) for no layer, each layer alone, and all together."""
    alone = [("breakpoints", "cache_breakpoints", True), ("stable_prefix", "stable_prefix", True),
             ("tools", "cap_tool_description_chars", tool_chars), ("boilerplate", "strip_boilerplate", True),
             ("dedupe", "dedupe_tool_results", True), ("caps", "cap_tool_result_chars", 12_000),
             ("prune", "prune_max_tokens", 40_000), ("diff_first", "diff_first", True),
             ("smart_routing", "route_background", "cheap")]  # fmt: skip
    rows = [(name, {key: value}) for name, key, value in alone]
    if drop_tools:
        rows = [(name, values | {"drop_tools": drop_tools} if name == "tools" else values) for name, values in rows]
    return [("none", {})] + rows + [("all", {k: v for _, values in rows for k, v in values.items()})]


class Command(BaseCommand):
    help = "Replay the recorded client sessions with each cost-optimization layer alone and all together."

    def add_arguments(self, parser):
        parser.add_argument("--markdown", action="store_true", help="a Markdown table (for the README)")
        parser.add_argument("--session", choices=list(SESSIONS), action="append")
        parser.add_argument("--tool-description-chars", type=int, default=TOOL_DESCRIPTION_CHARS,
                            help="the tools layer's cap (cap_tool_description_chars)")
        parser.add_argument("--drop-tools", default="", help="the tools layer's drop_tools, e.g. 'Cron*,*Worktree'")

    def handle(self, *args, markdown=False, session=None, tool_description_chars=TOOL_DESCRIPTION_CHARS, drop_tools="",
               **options):
        from tests.fakes.upstream import FakeUpstream

        drop = tuple(p.strip() for p in drop_tools.split(",") if p.strip())
        variants = layers(tool_description_chars, drop)
        with FakeUpstream(key="sk-replay", prompt_cache=True) as fake:
            rows = asyncio.run(replay_all(fake, session or list(SESSIONS), variants))
        self.stdout.write(render(rows, markdown))


@dataclass
class Totals:
    requests: int = 0
    failed: int = 0
    uncached: int = 0
    read: int = 0
    written: int = 0
    output: int = 0
    cost: Decimal = field(default_factory=Decimal)

    @property
    def sent(self) -> int:
        return self.uncached + self.read + self.written


async def replay_all(fake, sessions, variants) -> list[tuple]:
    from proxy import routing

    rows = []
    for session in sessions:
        requests = SESSIONS[session]()
        for kind in ("anthropic", "openai"):
            routing._current = snapshot(fake, kind)
            for name, values in variants:
                fake.state.reset()  # an empty provider cache for every replay
                totals = await replay(requests, values)
                rows.append((session, kind, name, totals))
    routing.cache_clear()
    from proxy.upstreams import http

    await http.close_all()
    return rows


async def replay(requests, values: dict) -> Totals:
    from accounts.keys import AuthenticatedKey
    from accounts.models import Optimization
    from proxy import core
    from usage import ledger

    opt = Optimization(**values) if values else None
    key = AuthenticatedKey(id=0, prefix="replay", project_id=0, project_slug="replay", project_models=(),
                           key_models=(), expires_at=None, optimize=opt)  # fmt: skip
    totals, recorded = Totals(), []
    saved = ledger.record, getattr(ledger, "snapshot", None)
    ledger.record, ledger.snapshot = recorded.append, lambda row: None  # nothing reaches the database
    try:
        for ingress, body in requests:
            result = await core.run_to_end(key, ingress, copy.deepcopy(body))
            totals.failed += result.status != 200
    finally:
        ledger.record, ledger.snapshot = saved
    for row in recorded:
        get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
        totals.requests += 1
        totals.uncached += get("input_tokens")
        totals.read += get("cache_read_tokens")
        totals.written += get("cache_write_tokens")
        totals.output += get("output_tokens")
        totals.cost += get("cost_usd")
    return totals


def snapshot(fake, kind: str):
    """Routes claude-haiku* / claude-* / gpt-* / cheap to the fake as an upstream of `kind`, with PRICES."""
    from proxy.routing import Account, Provider, Route, Snapshot, Target
    from usage.pricing import Rates

    account = Account(id=1, name="main", credential="sk-replay", weight=1, priority=0)
    base_url = fake.url if kind == "anthropic" else fake.openai_url
    provider = Provider(name=f"fake-{kind}", kind=kind, base_url=base_url, connect_timeout=5, read_timeout=60,
                        extra_headers=(), accounts=(account,))  # fmt: skip
    strong, small = MODELS[kind]

    def route(alias, model):
        return Route(alias=alias, display_name=alias, default_max_tokens=4096, max_output_tokens=None,
                     targets=(Target(provider, model, 0, 1),), created_at=0, account_ids=(1,))  # fmt: skip

    patterns = [route("claude-haiku*", small), route("claude-*", strong), route("gpt-*", strong)]
    prices = {m: [(date(2020, 1, 1), Rates(*p))] for m, p in PRICES.items()}
    return Snapshot(exact={"cheap": route("cheap", "fake-small")}, patterns=patterns, prices=prices,
                    loaded_at=time.monotonic() + 10**9)  # fmt: skip


# --- the sessions, rebuilt from tests/fixtures/sessions --------------------------------------------------------


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def claude_code() -> list[tuple[str, dict]]:
    """Every request as Claude Code sends it: the capture's tools, system and role:"system" message, the growing
    conversation, cache_control on the last block only (plus the system's own), and the same billing line for the
    whole session (as the recorded session shows: its suffix follows the session's first prompt)."""
    session = load("sessions/claude-code-session.json")
    main = load(session["main_capture"])["body"]
    background = load(session["background_capture"])["body"]
    first_user, system_message = main["messages"][0], main["messages"][1]
    reminder = [b for b in first_user["content"] if b["type"] == "text" and b["text"].startswith("<system-reminder>")]
    conversation, prompt, out = [], "", []
    for request in session["requests"]:
        if request["kind"] == "background":
            body = copy.deepcopy(background)
            body["messages"][-1]["content"][-1] = {"type": "text", "text": request["text"]}
            out.append(("anthropic", body))
            continue
        for message in copy.deepcopy(request["append"]):
            if not conversation:  # the first prompt joins the capture's context reminder, then its system message
                message["content"] = reminder + message["content"]
                conversation += [message, system_message]
                continue
            conversation.append(message)
        prompt = prompt or conversation[0]["content"][-1]["text"]
        out.append(("anthropic", _claude_request(main, conversation, prompt)))
    return out


def _claude_request(main: dict, conversation: list, prompt: str) -> dict:
    body = copy.deepcopy(main)
    messages = copy.deepcopy(conversation)
    for message in messages:
        for block in message["content"] if isinstance(message["content"], list) else ():
            block.pop("cache_control", None)
    last = [m for m in messages if m["role"] == "user"][-1]["content"]
    last[-1]["cache_control"] = {"type": "ephemeral"}
    suffix = hashlib.sha256(prompt.encode()).hexdigest()[:3]
    body["system"][0]["text"] = f"x-anthropic-billing-header: cc_version=2.1.197.{suffix}; cc_entrypoint=cli;"
    body["messages"] = messages
    return body


AIDER_FILES = ("I have *added these files to the chat* so you can go ahead and edit them.\n\n*Trust this message as "
               "the true contents of these files!*\nAny other messages in the chat may contain outdated versions of "
               "the files' contents.\n\n")  # fmt: skip


def aider() -> list[tuple[str, dict]]:
    """Each turn as aider sends it: its system prompt, the files in the chat, the history, the new message and
    its closing system reminder."""
    session = load("sessions/aider-session.json")
    capture = load(session["capture"])["body"]
    system, reminder = capture["messages"][0], capture["messages"][-1]
    files = AIDER_FILES + "".join(f"{name}\n```\n{text}\n```\n\n" for name, text in session["files"].items())
    chat = [{"role": "user", "content": files},
            {"role": "assistant", "content": "Ok, any changes I propose will be to those files."}]  # fmt: skip
    out, history = [], []
    for turn, answer in zip(session["turns"], session["answers"]):
        messages = [system, *chat, *history, {"role": "user", "content": turn}, reminder]
        out.append(("openai", {**{k: v for k, v in capture.items() if k != "messages"}, "messages": messages}))
        history += [{"role": "user", "content": turn}, {"role": "assistant", "content": answer}]
    return out


def claude_code_recorded() -> list[tuple[str, dict]]:
    """The session recorded with the real Claude Code CLI (record_claude_code.py): its messages and billing line
    as sent, on the capture's tools and system prompt."""
    session = load("sessions/claude-code-recorded.json")
    main = load(session["main_capture"])["body"]
    background = load(session["background_capture"])["body"]
    out = []
    for request in session["requests"]:
        body = copy.deepcopy(background if request["kind"] == "background" else main)
        body.update(model=request["model"], messages=request["messages"], max_tokens=request["max_tokens"])
        body["system"][0]["text"] = request["billing"]
        out.append(("anthropic", body))
    return out


def aider_recorded() -> list[tuple[str, dict]]:
    """The chat turns recorded with the real aider CLI (record_aider.py), as sent."""
    return [("openai", request) for request in load("sessions/aider-recorded.json")["requests"]]


def codex_recorded() -> list[tuple[str, dict]]:
    """The session recorded with the real Codex CLI (record_codex.py), as sent to /v1/responses: each body is the
    shared top-level fields plus the previous request's input items it keeps and the ones it adds."""
    session = load("sessions/codex-recorded.json")
    out, items = [], []
    for request in session["requests"]:
        items = items[: request["keep"]] + request["append"]
        body = {k: v for k, v in session["base"].items() if k not in request.get("drop", ())}
        out.append(("responses", {**body, **request["fields"], "input": copy.deepcopy(items)}))
    return out


SESSIONS = {"claude-code-recorded": claude_code_recorded, "aider-recorded": aider_recorded,
            "codex-recorded": codex_recorded, "claude-code": claude_code, "aider": aider}  # fmt: skip


def render(rows, markdown: bool) -> str:
    head = ("session", "upstream", "layers", "requests", "input sent", "cache read", "cache write", "uncached",
            "cost USD", "vs none")  # fmt: skip
    lines, baseline = [], {}
    for session, kind, name, t in rows:
        if name == "none":
            baseline[(session, kind)] = t.cost
        base = baseline[(session, kind)]
        change = f"{(t.cost - base) / base * 100:+.1f}%" if base else "-"
        failed = f" ({t.failed} failed)" if t.failed else ""
        lines.append((session, kind, name, f"{t.requests}{failed}", f"{t.sent:,}", f"{t.read:,}", f"{t.written:,}",
                      f"{t.uncached:,}", f"{t.cost:.4f}", change))  # fmt: skip
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines]) + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in [head, *lines]) + "\n"


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    import django

    django.setup()
    Command().run_from_argv(["python -m", "bench.replay_savings", *sys.argv[1:]])  # prog: python -m bench.…
