"""Secret and PII redaction: what the client wrote is checked against its project's rules before the request
leaves for the upstream, and stored copies (request logs) are masked the same way. Reference: docs/redaction.md.

    outbound(call, body, fmt, headers)   the request step in proxy/core.py (after optimize, before attempts):
                                         every rule that is on scans the text the user and its tools wrote, in
                                         the caller's own format (proxy/optimize/transforms/shape.py `slots`:
                                         system, user text, tool results; never assistant turns, thinking and
                                         its signatures, Responses reasoning items, images or documents), then
                                         masks it in place, refuses the request (400, naming the rule, never the
                                         secret) or only counts it (gateway_redactions_total, X-Gateway-Redaction)
    rules_for(key) -> RuleSet | None     the project's compiled rules (None: every rule off, the only cost then)
    redact_for_log(rules, obj)           a copy of a body or an assembled answer for storing: every rule that is
                                         on masks, whatever its action, and every string is walked (assistant
                                         text and tool calls too), except opaque fields (signatures, encrypted
                                         reasoning, base64 data)

A mask is `[REDACTED:<rule>:<6 hex>]`, the hex an HMAC of the secret under a key of the project's own, so the
same secret gives the same placeholder in every turn of a conversation: a prompt-cached prefix stays byte-stable
across turns even when it holds a masked secret (a block the client marked with cache_control is masked too;
leaving it would send the secret). Regular expressions, not an NLP detector: secrets have fixed shapes, and the
PII rules that matter here (e-mail, phone, card with a Luhn check) are pattern rules even in Microsoft Presidio,
whose spaCy model would cost tens of milliseconds and hundreds of megabytes per process (docs/redaction.md).

How to add a rule: its id in accounts.models.REDACTION_RULES (its group), a Rule in RULES below (a pattern whose
last matching group, or whole match, is the secret; `hints`: literals without which it cannot match, checked
with `in` before the regex runs), true and false positives in tests/unit/test_redact.py, a row in
docs/redaction.md.
"""

import hashlib
import hmac
import math
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from django.conf import settings

from accounts.models import REDACTION_RULES
from usage import metrics

from .errors import InvalidRequest
from .optimize.transforms.shape import slots

HEADER = "x-gateway-redaction"  # the rules that fired and their actions, for the caller (never the secret)
OPAQUE_KEYS = frozenset({"signature", "encrypted_content", "data"})  # redact_for_log leaves these strings whole


# --- checks on a match ------------------------------------------------------------------------------------------


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[068]|6(?:011|5|4[4-9]|2)|35")


def card(value: str) -> bool:
    """13 to 19 digits, one kind of separator at most, an issuer's prefix, and a valid Luhn check digit."""
    digits = value.replace(" ", "").replace("-", "")
    if " " in value and "-" in value:
        return False
    return 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) is not None and luhn(digits)


def phone(value: str) -> bool:
    digits = sum(ch.isdigit() for ch in value)
    return 10 <= digits <= 15 if value.startswith("+") else digits == 10


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


_DIGIT_GROUPS = re.compile(r"\d+")
_MEMBER = re.compile(r"\.[A-Za-z_]|\d{4}-\d\d-\d\d")  # base64.b64encode, settings.API_KEY; a dated name


def random_looking(value: str) -> bool:
    """A value nobody typed as words: 12+ characters, letters with digits scattered among them (3 groups at least:
    `Gx7kP2mQ9v`, not `id_GostR3410_2001`, `X448PublicKey` or `MY_TOKEN_V2`), high entropy, not a reference to
    somewhere else (a variable, a path, a URL, a member, a placeholder) and not an alphabet in order."""
    if len(value) < 12 or value[0] in "$%{<./~\\*_" or value.startswith(("http", "REDACTED", "[REDACTED")):
        return False
    if not any(ch.isalpha() for ch in value) or len(_DIGIT_GROUPS.findall(value)) < 3 or _MEMBER.search(value):
        return False
    return entropy(value) >= (3.0 if len(value) < 24 else 3.4) and list(value) != sorted(value)


_PLACEHOLDERS = frozenset({"password", "passwd", "pass", "pwd", "pw", "secret", "changeme"})


def real_password(value: str) -> bool:
    """A URL's password, unless it is a placeholder or a reference (${DB_PASSWORD}, <password>, ****, %s)."""
    return value[0] not in "$%{<[*" and bool(set(value) - set("*xX.")) and value.lower() not in _PLACEHOLDERS


_HEX = re.compile(r"[0-9a-f-]{32,}")


def prefixed_token(value: str) -> bool:
    """A provider token after its prefix: random letters and digits, mixed case or long lowercase hex (DeepSeek,
    OpenRouter); rules out names after `sk-` such as sk-ecdsa-sha2-nistp256-cert-v01 (an SSH key type)."""
    if not any(ch.isdigit() for ch in value):
        return False
    mixed_case = any(ch.isupper() for ch in value) and any(ch.islower() for ch in value)
    return mixed_case or _HEX.fullmatch(value) is not None


_KEY_BODY = re.compile(r"[A-Za-z0-9+/]{40}")


def key_block(value: str) -> bool:
    """A PEM block with a key in it, not a header line that code compares with."""
    return _KEY_BODY.search(value) is not None


# --- the rules ----------------------------------------------------------------------------------------------------


class View:
    """A text as the rules scan it: ASCII bytes of the same length (a non-ASCII character reads as "?", and no
    secret contains one), lowercased and digit-folded copies made on first use. Python's regex engine finds a
    literal at memchr speed but tests a character class character by character (~50x slower), so every pattern
    here starts with a literal, and rules without one are gated by `bytes.find` on these copies."""

    __slots__ = ("text", "raw", "_lower", "_digits")

    def __init__(self, text: str):
        self.text = text
        self.raw = text.encode("ascii", "replace")
        self._lower = self._digits = None

    @property
    def lower(self) -> bytes:
        if self._lower is None:
            self._lower = self.raw.lower()
        return self._lower

    @property
    def digits(self) -> bytes:
        """Every digit as 0: a run of digits is a run of zeros."""
        if self._digits is None:
            self._digits = self.raw.translate(_FOLD_DIGITS)
        return self._digits


_FOLD_DIGITS = bytes(48 if 48 <= i <= 57 else i for i in range(256))


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    label: str  # what a refusal names: "an AWS access key"
    patterns: tuple[re.Pattern, ...]  # bytes patterns, each starting with a literal (see View)
    hints: tuple[bytes, ...] = ()  # the text holds one of these, or the rule cannot match; () = always scan
    on: str = "raw"  # the copy hints and patterns are matched on: raw, lower (lowercase) or digits (0 for a digit)
    check: Callable[[str], bool] | None = None  # the secret (last matching group, else the match) must pass it
    find: Callable[[View], list] | None = None  # instead of the patterns: the spans, found some other way

    def spans(self, view: View) -> list:
        """(start, end, secret) of each match, in order, not overlapping."""
        haystack = getattr(view, self.on)
        if self.hints and not any(hint in haystack for hint in self.hints):
            return []
        found = self.find(view) if self.find is not None else []
        for pattern in self.patterns:
            for m in pattern.finditer(haystack):
                group = m.lastindex or 0
                start, end = m.span(group)
                secret = view.text[start:end]
                if self.check is None or self.check(secret):
                    found.append((start, end, secret))
        return _disjoint(found) if len(self.patterns) + (self.find is not None) > 1 else found


def _disjoint(spans: list) -> list:
    out, at = [], -1
    for span in sorted(spans):
        if span[0] >= at:
            out.append(span)
            at = span[1]
    return out


def _rule(id, label, *sources: str, hints=(), on="raw", check=None, find=None) -> Rule:
    patterns = tuple(re.compile(source.encode()) for source in sources)
    return Rule(id, label, patterns, tuple(h.encode() for h in hints), on, check, find)


_EMAIL_DOMAIN = re.compile(rb"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b(?!:)")
_EMAIL_LOCAL = re.compile(rb"[A-Za-z0-9._%+-]{1,64}\Z")


def emails(view: View) -> list:
    """From each `@domain.tld`, the local part to its left (not `git@host:path`, a git remote)."""
    found = []
    for m in _EMAIL_DOMAIN.finditer(view.raw):
        at = m.start()
        local = _EMAIL_LOCAL.search(view.raw, max(0, at - 64), at)
        if local is not None and local.group()[:1].isalnum():
            found.append((local.start(), m.end(), view.text[local.start():m.end()]))
    return found


_TAIL = r"(?![A-Za-z0-9_-])"
_QUOTE = r"(?:\\?[\"'])?"  # also a quote escaped inside a string (JSON in a tool result: \")
_SEP = _QUOTE + r"[ \t]*(?:=|:=|:|=>)[ \t]*" + _QUOTE  # `=`, `: `, `": "`
_VALUE = r"([A-Za-z0-9!#$%*+./:=@^_|~-]{12,200})"  # (no "?": a non-ASCII character reads as one, see View)
# A value is secret-named when its name holds one of these (api_key, SECRET_KEY, password, auth_token, apiKey…).
_NAMES = ("secret", "token", "pass", "pwd", "key", "credential", "auth")
SECRET_NAME = re.compile("|".join(_NAMES), re.I)  # a dict key that names a secret (redact_for_log)
# `name = value`, `name: value`, `"name": "value"`: found from the separator (a literal: fast), then the name is
# looked for just before it, on the lowercased text.
_AFTER_SEPARATOR = tuple(re.compile((sep + r"[ \t]*" + _QUOTE + _VALUE).encode()) for sep in ("=>?", ":=?"))
_NAME_BEFORE = re.compile(("(?:" + "|".join(_NAMES) + r")[\w.-]{0,24}" + _QUOTE + r"[ \t]*\Z").encode())


def named_values(view: View) -> list:
    """The random-looking values of secret-named settings (the generic rule)."""
    found, text, lower = [], view.text, view.lower
    for pattern in _AFTER_SEPARATOR:
        at = 0
        while (m := pattern.search(lower, at)) is not None:
            start, end = m.span(1)
            named = _NAME_BEFORE.search(lower, max(0, m.start() - 40), m.start()) is not None
            if named and random_looking(text[start:end]):
                found.append((start, end, text[start:end]))
                at = end
            else:
                at = m.start() + 1  # the next separator may start inside this value: `a=1&token=…`
    return found

RULES = {rule.id: rule for rule in (
    _rule("private_key", "a private key",
          r"-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,16000}?-----END[A-Z0-9 ]{0,30}PRIVATE KEY"
          r"(?: BLOCK)?-----|(?:[A-Za-z0-9+/=\s]|\\[nr])*)", check=key_block),
    _rule("anthropic_key", "an Anthropic API key", r"sk-ant-[a-z]{2,8}\d{0,3}-[A-Za-z0-9_-]{32,}", hints=("sk-",)),
    _rule("openai_key", "an OpenAI API key",
          r"sk-(?<![\w-]sk-)(?!ant-)(?:proj-|svcacct-|admin-|None-|or-v1-)?([A-Za-z0-9_-]{20,})" + _TAIL, hints=("sk-",),
          check=prefixed_token),
    _rule("github_token", "a GitHub token", r"gh[pousr]_[A-Za-z0-9]{36,}\b", r"github_pat_[A-Za-z0-9_]{40,}\b"),
    _rule("gatehouse_key", "a Gatehouse API key", r"gh_(?<![A-Za-z0-9]gh_)[A-Za-z0-9]{48}\b"),
    _rule("slack_token", "a Slack token or webhook", r"x(?:ox[abposre]|app-\d)-[A-Za-z0-9-]{10,}",
          r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}"),
    _rule("stripe_key", "a Stripe secret key", r"sk_(?:live|test)_[A-Za-z0-9]{16,}",
          r"rk_(?:live|test)_[A-Za-z0-9]{16,}"),
    _rule("google_api_key", "a Google API key", r"AIza[0-9A-Za-z_-]{35}" + _TAIL),
    _rule("aws_access_key", "an AWS access key", r"A(?:KIA|SIA)[A-Z0-9]{16}\b"),
    _rule("aws_secret_key", "an AWS secret access key",
          r"aws_?secret_?access_?key" + _SEP + r"([a-z0-9/+]{40})(?![a-z0-9/+])", on="lower"),
    _rule("jwt", "a JSON Web Token", r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),
    _rule("url_password", "a password in a URL",
          r"://(?<=[A-Za-z0-9]://)[^\s:/?#@\"'<>\\]{0,64}:([^\s:/?#@\"'<>\\]{1,128})@(?=[\w\[])", check=real_password),
    _rule("generic_secret", "a secret value", r"bearer\s+([a-z0-9._~+/-]{16,}=*)", on="lower", check=random_looking,
          find=named_values),
    _rule("email", "an e-mail address", hints=("@",), find=emails),
    _rule("phone", "a phone number",  # on the digit-folded copy: every digit is a 0
          r"\+(?<![\w+.-]\+)0{1,3}[ .-]?(?:\(0{1,4}\)[ .-]?)?0{1,4}(?:[ .-]0{2,5}){1,4}(?![\w-]|\.0)",
          r"\((?<![\w+.-]\()000\) ?000[ .-]0000(?![\w-]|\.0)",
          r"0(?<![\w+.-]0)00(?:-000-|\.000\.)0000(?![\w-]|\.0)", on="digits", check=phone),
    _rule("card_number", "a payment card number", r"0(?<![0.-]0)(?:[ -]?0){12,18}(?![0-]|\.0)", on="digits",
          hints=("0000",), check=card),
)}  # fmt: skip
assert list(RULES) == [rule for rules in REDACTION_RULES.values() for rule in rules], "accounts.models.REDACTION_RULES"


# --- a project's rules --------------------------------------------------------------------------------------------


class Blocked(Exception):
    def __init__(self, rule: Rule):
        super().__init__(rule.id)
        self.rule = rule


class RuleSet:
    """A project's rules, compiled once per process (`rules_for`). A text seen lately (Claude Code sends its
    system prompt and the whole conversation again every turn) is answered from `_seen`, so a turn pays for its
    new text only; the memo is bounded (SEEN_CHARS per project) and holds nothing the process was not given."""

    SEEN_CHARS = 4_000_000
    SEEN_MIN = 256  # shorter texts cost less to scan than to remember

    def __init__(self, project: str, rules: tuple, salt: bytes):
        self.project = project  # the slug, a metrics label
        self.rules = rules  # (rule, mask | block | log), in RULES order: specific rules before generic ones
        self.salt = salt
        self._seen: OrderedDict = OrderedDict()  # (text, mask_all) -> (result, findings, blocking rule)
        self._seen_chars = 0

    def placeholder(self, rule: str, secret: str) -> str:
        return f"[REDACTED:{rule}:{hmac.new(self.salt, secret.encode(), hashlib.sha256).hexdigest()[:6]}]"

    def apply(self, text: str, found: Counter, *, mask_all: bool = False) -> str:
        """`text` with the findings of mask rules replaced (of every rule, with `mask_all`); each finding counted
        in `found` by (rule, action). Raises Blocked at the first finding of a block rule."""
        key = (text, mask_all)
        seen = self._seen.get(key) if len(text) >= self.SEEN_MIN else None
        if seen is None:
            seen = self._scan(text, mask_all)
            if len(text) >= self.SEEN_MIN:
                self._remember(key, seen)
        else:
            self._seen.move_to_end(key)
        result, findings, blocked = seen
        found.update(findings)
        if blocked is not None:
            raise Blocked(blocked)
        return result

    def _scan(self, text: str, mask_all: bool) -> tuple:
        """-> (result, findings by (rule, action), the block rule that fired or None)."""
        found: dict = {}
        view = None
        for rule, action in self.rules:
            view = view or View(text)
            spans = rule.spans(view)
            if not spans:
                continue
            action = "mask" if mask_all else action
            found[rule.id, action] = found.get((rule.id, action), 0) + len(spans)
            if action == "block":
                return text, found, rule
            if action == "mask":
                text, view = self._masked(text, rule.id, spans), None
        return text, found, None

    def _remember(self, key, seen) -> None:
        self._seen[key] = seen
        self._seen_chars += len(key[0])
        while self._seen_chars > self.SEEN_CHARS:
            (text, _), _ = self._seen.popitem(last=False)
            self._seen_chars -= len(text)

    def _masked(self, text: str, rule: str, spans) -> str:
        out, at = [], 0
        for start, end, secret in spans:
            out += (text[at:start], self.placeholder(rule, secret))
            at = end
        return "".join(out) + text[at:]


def rules_for(key) -> RuleSet | None:
    """The compiled rules of the key's project; None when every rule is off (or there is no key)."""
    view = getattr(key, "redact", None)
    return None if view is None else _compiled(view, key.project_id, key.project_slug)


@lru_cache(maxsize=1024)
def _compiled(view, project_id: int, project: str) -> RuleSet:
    pepper = settings.GATEWAY_KEY_PEPPER.encode()
    salt = hmac.new(pepper, f"gatehouse redaction placeholders, project {project_id}".encode(), hashlib.sha256)
    return RuleSet(project, tuple((RULES[rule], action) for rule, action in view.actions), salt.digest())


# --- the request step ----------------------------------------------------------------------------------------------


def outbound(call, body: dict, fmt: str, headers: dict) -> None:
    """Apply the project's rules to `body` (the caller's format `fmt`) in place, before any upstream sees it."""
    rules = rules_for(call.key)
    found: Counter = Counter()
    try:
        for _kind, i, holder, key, _tool in slots(body, fmt):
            text = holder[key]
            masked = rules.apply(text, found)
            if masked is not text:
                holder[key] = masked
    except Blocked as blocked:
        _count(rules, found)
        where = ("instructions" if fmt == "responses" else "system") if i < 0 else f"{_LIST[fmt]}[{i}]"
        raise InvalidRequest(
            f"request blocked by this project's redaction rules: {where} contains {blocked.rule.label} "
            f"(rule {blocked.rule.id}); remove it and send the request again",
            param=where, code="redaction_blocked",
        ) from None
    if found:
        _count(rules, found)
        headers[HEADER] = ", ".join(sorted({f"{rule}={action}" for rule, action in found}))


_LIST = {"anthropic": "messages", "openai": "messages", "responses": "input"}


def _count(rules: RuleSet, found: Counter) -> None:
    for (rule, action), n in found.items():
        metrics.redacted(rules.project, rule, action, n)


# --- stored copies -------------------------------------------------------------------------------------------------


def redact_for_log(rules: RuleSet | None, obj):
    """A copy of `obj` (a body or an assembled answer: dicts, lists, strings; or bytes of UTF-8 text) to store:
    every rule that is on masks, whatever its action (a stored copy never keeps a secret). A string under a
    secret-sounding key (`"api_key": "…"`) is masked when it looks random. Give a stream's assembled answer, not
    its chunks: a secret split across two deltas is found only once they are joined."""
    if rules is None:
        return obj
    if isinstance(obj, (bytes, bytearray)):
        return _walk(rules, bytes(obj).decode("utf-8", "replace")).encode()
    return _walk(rules, obj)


def _walk(rules: RuleSet, obj):
    if isinstance(obj, str):
        inline_file = obj.startswith("data:") and ";base64," in obj[:100]  # an image or file as a data: URL
        return obj if inline_file else rules._scan(obj, True)[0]  # (no memo: another thread may be the one)
    if isinstance(obj, list):
        return [_walk(rules, item) for item in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for name, value in obj.items():
        if isinstance(value, str) and (name in OPAQUE_KEYS or _named_secret(rules, name, value)):
            out[name] = value if name in OPAQUE_KEYS else rules.placeholder("generic_secret", value)
        else:
            out[name] = _walk(rules, value)
    return out


def _named_secret(rules: RuleSet, name: str, value: str) -> bool:
    on = any(rule.id == "generic_secret" for rule, _action in rules.rules)
    return on and SECRET_NAME.search(name) is not None and random_looking(value)
