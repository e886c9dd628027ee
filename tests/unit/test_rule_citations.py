"""Every rule id the repository cites (P-25, R-8, §5.12 …) in code, tests, README and docs has its heading in
docs/ (translation.md, responses.md), and nothing cites a reference document that is not in the repository: whoever
inherits the code can follow each citation without the notes it was first written against."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CITED = re.compile(r"(?<![\w-])(?:[PR]-\d+(?!\d)|§\d+(?:\.\d+)*)")
# the notes Gatehouse was written against lived next to the repository, not in it
OUTSIDE = re.compile(r"\.\./shared/|/work/shared|(?<![\w/-])(?:protocols|perf-notes|codex|libraries)\.md")
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", "data", "staticfiles", "build", "dist", ".pytest_cache"}
VENDORED = ROOT / "usage" / "static" / "usage" / "vendor"


def repository_text_files():
    """Code, tests, README, docs, scripts and config. JSON is data (client captures, prices, a dashboard)."""
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(top, name)
            if path.suffix in (".json", ".png", ".pyc", ".sqlite3") or path.is_relative_to(VENDORED):
                continue
            try:
                yield path, path.read_text()
            except UnicodeDecodeError:
                continue


def defined_ids() -> dict[str, list[str]]:
    defined: dict[str, list[str]] = {}
    for doc in sorted(DOCS.glob("*.md")):
        for line in doc.read_text().splitlines():
            if line.startswith("#"):
                for rule in CITED.findall(line):
                    defined.setdefault(rule, []).append(doc.name)
    return defined


def test_every_cited_rule_id_has_its_heading_in_docs():
    defined = defined_ids()
    unresolved = []
    for path, text in repository_text_files():
        for number, line in enumerate(text.splitlines(), 1):
            for rule in CITED.findall(line):
                if rule not in defined:
                    unresolved.append(f"{path.relative_to(ROOT)}:{number}: {rule}")
    assert unresolved == []


def test_each_rule_id_is_defined_once():
    defined = defined_ids()
    assert {rule: docs for rule, docs in defined.items() if len(docs) > 1} == {}
    assert {f"P-{n}" for n in range(1, 27)} | {f"R-{n}" for n in range(1, 12)} <= set(defined)


def test_nothing_cites_a_document_outside_the_repository():
    this = Path(__file__).resolve()
    outside = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
               for path, text in repository_text_files() if path != this
               for number, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]  # fmt: skip
    assert outside == []
