"""`gatehouse`: manage.py for an installed Gatehouse, which has no manage.py (`gatehouse migrate`,
`gatehouse load_prices`, `gatehouse bootstrap`, ... README "Install from the wheel")."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["gatehouse", *sys.argv[1:]])
