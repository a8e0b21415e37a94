"""Regenerate the README's command reference from `weaklabel --help` (sqlite-utils style).

Usage: python tools/gen_cli_reference.py README.md [--check]
With --check, exit 1 when the README's reference is stale instead of rewriting it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"


def reference() -> str:
    """Markdown of every command's --help, at a fixed width and without colour."""
    os.environ["COLUMNS"] = "100"
    os.environ["TERMINAL_WIDTH"] = "100"
    os.environ["NO_COLOR"] = "1"
    os.environ["_TYPER_FORCE_DISABLE_TERMINAL"] = "1"
    from typer.testing import CliRunner

    from weaklabel.cli import app

    runner = CliRunner()
    import typer.main

    names: list[str] = []
    for c in typer.main.get_command(app).commands.values():  # type: ignore[attr-defined]
        names.append(c.name)
        # a command group (``review``): each of its commands too
        names += [f"{c.name} {sub}" for sub in getattr(c, "commands", {})]
    parts = []
    for name in [None, *names]:
        args = [*name.split(), "--help"] if name else ["--help"]
        res = runner.invoke(app, args, env={"COLUMNS": "100", "NO_COLOR": "1"})
        text = "\n".join(line.rstrip() for line in res.output.strip().splitlines())
        title = f"weaklabel {name}" if name else "weaklabel"
        parts.append(f"### `{title}`\n\n```\n{text}\n```\n")
    return "\n".join(parts)


def update(readme: Path, check: bool = False) -> bool:
    """Rewrite the block between the markers; return True when it was already current."""
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme}: markers {START} … {END} not found")
    new = pattern.sub(lambda _: f"{START}\n\n{reference()}\n{END}", text)
    if new == text:
        return True
    if not check:
        readme.write_text(new, encoding="utf-8")
    return False


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    check = "--check" in sys.argv
    current = update(path, check=check)
    if check and not current:
        print(f"{path}: command reference is stale; run `make docs`", file=sys.stderr)
        sys.exit(1)
