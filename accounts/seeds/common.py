"""The row every environment seed's table is made of, and the readers of its values (accounts/seeds)."""

from dataclasses import dataclass
from typing import Callable

SKIP = object()  # a converter's answer: nothing to set for this value
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Var:
    name: str
    counterpart: str  # what Gatehouse makes of it: the start's log line, migrate_from and docs/coming-from.md
    kind: str = "seed"  # same | setting | project | seed | always | none (accounts/seeds/__init__.py)
    setting: str = ""  # kind "setting": the Gatehouse variable it stands for
    field: str = ""  # kind "project": `rpm`, or `optimize.<ProjectOptimization field>`
    convert: Callable | None = None  # (raw value, environ) -> value | SKIP; ValueError names a bad value
    secret: bool = False
    is_flag: bool = False  # 1/0: a "none" flag set to 0 asks for nothing Gatehouse lacks


def flag(raw: str | None) -> bool | None:
    """1/true/yes/on -> True, 0/false/no/off -> False, anything else (or unset) -> None."""
    value = (raw or "").strip().lower()
    return True if value in _ON else False if value in _OFF else None


def as_flag(raw: str, environ) -> bool:
    value = flag(raw)
    if value is None:
        raise ValueError("expected 1 or 0")
    return value


def whole(raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None
    if value < minimum:
        raise ValueError(f"expected at least {minimum}")
    return value


def seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if value < 0:
        raise ValueError("expected a positive number")
    return value


def when(switch: str, default: bool, then: Callable) -> Callable:
    """A converter that gives `then(raw)` unless the flag variable `switch` is off (unset: `default`)."""

    def convert(raw: str, environ):
        on = flag(environ.get(switch))
        return then(raw) if (default if on is None else on) else SKIP

    return convert


def read_env_file(path) -> dict[str, str]:
    """A .env file as these gateways' docs write them: KEY=value lines, `export ` allowed, # comments (also after
    an unquoted value, as in `REDIS_URL=   # Redis for caching`), values in matching quotes taken as they are."""
    found = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.removeprefix("export ").partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            else:
                value = value.split(" #", 1)[0].split("\t#", 1)[0].strip()
                value = "" if value.startswith("#") else value
            found[key.strip()] = value
    return found
