"""The suite runs from any clone: tests read their fixtures from tests/fixtures, never from a path outside the
repository (a fixture directory that does not exist would quietly turn a parametrized test into zero tests)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# a file opened by a literal path that starts at the file system root (the kernel's /proc and /dev aside) or climbs
# out of the repository
OUTSIDE = re.compile(r"""(Path|open)\(\s*f?["'](?!/proc/|/dev/)(/|\.\./)""")
CAPTURE_DIRS = ("claude-code", "openai-clients", "codex/requests", "sessions")


def test_no_test_reads_a_path_outside_the_repository():
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_captures_the_tests_replay_are_in_the_repository():
    fixtures = ROOT / "tests" / "fixtures"
    for name in CAPTURE_DIRS:
        assert list((fixtures / name).glob("*.json")), f"tests/fixtures/{name} holds no capture"
    readme = (fixtures / "README.md").read_text()
    captures = sorted((fixtures / "claude-code").glob("*.json")) + sorted((fixtures / "openai-clients").glob("*.json"))
    for capture in captures:
        assert f"`{capture.parent.name}/{capture.name}`" in readme, f"{capture.name} is not described in the README"


def test_every_template_folder_ships_in_the_wheel():
    """templates/ is installed as data files, one line per folder (pyproject.toml): a folder a change adds without
    its line works from the source tree and fails with TemplateDoesNotExist once installed."""
    import tomllib

    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    globs = {pattern for patterns in shipped.values() for pattern in patterns}
    folders = {path.parent.relative_to(ROOT).as_posix() for path in (ROOT / "templates").rglob("*.html")}
    assert sorted(f for f in folders if f"{f}/*.html" not in globs) == []
