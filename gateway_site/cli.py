"""`gatehouse`: manage.py for an installed Gatehouse, which has no manage.py (`gatehouse migrate`,
`gatehouse load_prices`, `gatehouse bootstrap`, ... README "Install from the wheel").

LLM Gateway's CLI verbs are aliases here (`gatehouse add-api-key --key=sk-ant-... --name=prod`, `gatehouse
list-accounts`, ...): each becomes the Gatehouse command accounts/seeds/llm_gateway.py VERBS names for it."""

import argparse
import os
import sys


def alias_argv(argv: list[str]) -> list[str]:
    """`argv` with an LLM Gateway verb replaced by the Gatehouse command and arguments it stands for."""
    if not argv or argv[0] not in ALIASES:
        return argv
    return ALIASES[argv[0]](argv[1:])


def _options(argv: list[str], *names: str, required=()) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog=f"gatehouse {sys.argv[1] if len(sys.argv) > 1 else ''}".strip())
    for name in names:
        parser.add_argument(f"--{name}", required=name in required)
    return parser.parse_known_args(argv)


def _add_api_key(argv):
    opts, rest = _options(argv, "key", "name", "provider", required=("key", "name"))
    return ["add_account", f"{opts.provider or 'anthropic'}/{opts.name}", "--key", opts.key, *rest]


def _add_oauth(argv):
    opts, rest = _options(argv, "name", "client-id", "client-secret", "provider", required=("name",))
    return ["oauth_start", f"{opts.provider or 'anthropic'}/{opts.name}", *rest]


def _oauth_start(argv):
    opts, rest = _options(argv, "account-id", required=("account-id",))
    return ["oauth_start", opts.account_id, *rest]


def _oauth_callback(argv):
    opts, rest = _options(argv, "account-id", "code", required=("account-id", "code"))
    return ["oauth_finish", opts.account_id, opts.code, *rest]


def _passing(command):
    return lambda argv: [command, *argv]


ALIASES = {
    "add-api-key": _add_api_key,
    "add-oauth": _add_oauth,
    "oauth-start": _oauth_start,
    "oauth-callback": _oauth_callback,
    "list-accounts": _passing("list_accounts"),
    "status": _passing("gateway_status"),
    "health-check": _passing("check_providers"),
}


def main() -> None:
    from gateway_site.startup import settings_or_exit

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    settings_or_exit()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["gatehouse", *alias_argv(sys.argv[1:])])
