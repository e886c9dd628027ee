"""claude-proxy (Anthropic Messages in, any OpenAI-compatible upstream out; Go, `config.json`).

Its file is read by accounts/config_seeds.py (`from_claude_proxy`, the older home of this import); this module
is its entry in the seed registry. CONFIG_PATH, its only variable, is where `migrate_from claude-proxy` looks
when no --config is given.
"""

NAME, TITLE = "claude-proxy", "claude-proxy"
CONFIG_ENV, CONFIG_DEFAULT = "CONFIG_PATH", "config.json"


def recognise(data) -> bool:
    from ..config_seeds import is_claude_proxy

    return is_claude_proxy(data)


def translate(data) -> dict:
    from ..config_seeds import from_claude_proxy

    return from_claude_proxy(data)
