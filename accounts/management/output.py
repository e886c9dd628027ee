"""How the operator commands print: an aligned table (the last column runs free), or one JSON document with
--json. Shared by accounts' commands (list_accounts, list_keys) and proxy's (gateway_status, check_providers)."""

import json


def write_table(command, columns: tuple[str, ...], rows: list[dict], *, flagged=lambda row: False) -> None:
    """Rows are dicts keyed by `columns`; None shows as "-". A flagged row is shown in the warning style."""
    cells = [tuple(c.upper() for c in columns)]
    cells += [tuple("-" if row[c] is None else str(row[c]) for c in columns) for row in rows]
    widths = [max(len(cell[i]) for cell in cells) for i in range(len(columns) - 1)]
    for i, cell in enumerate(cells):
        line = "  ".join(v.ljust(w) for v, w in zip(cell, widths)) + "  " + cell[-1]
        command.stdout.write(command.style.WARNING(line) if i and flagged(rows[i - 1]) else line)


def write_json(command, document: dict) -> None:
    command.stdout.write(json.dumps(document, indent=2, default=str))
