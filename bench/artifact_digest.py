"""SHA-1 of every artifact of a workspace (and an exported data set), one line each.

Used to prove that a refactoring leaves a build's artifacts byte for byte unchanged:
digest the bundled example's build before and after, then ``diff`` the two lists. Only
the volatile fields of the sidecar metas are normalised (the write time and elapsed
seconds, and the worker count a machine decides); every other byte of every file counts.
Caches that are not artifacts (the token cache, the image inventory's SQLite file, the
lock) are listed by name only: their bytes depend on SQLite's page layout, not on us.

Usage::

    python bench/artifact_digest.py build/example > before.txt
    python bench/artifact_digest.py build/example > after.txt && diff before.txt after.txt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

VOLATILE = ("written_at", "elapsed_s", "elapsed")
NOT_ARTIFACTS = (".lock", "cache/", "inventory.sqlite", "decisions.sqlite")


def _normalise(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: "<volatile>" if k in VOLATILE else _normalise(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_normalise(v) for v in obj]
    return obj


def digest(path: Path) -> str:
    """SHA-1 of a file; a ``*.meta.json`` or the export ledger is hashed with its
    volatile fields blanked (the ledger also records absolute folders: compare builds
    made in the same checkout)."""
    data = path.read_bytes()
    if path.name.endswith(".meta.json") or path.name == ".weaklabel-export.json":
        meta = json.loads(data)
        data = json.dumps(_normalise(meta), indent=2, ensure_ascii=False).encode()
    return hashlib.sha1(data).hexdigest()


def digest_tree(root: Path) -> list[str]:
    """``SHA1  relative/path`` for every file under ``root``, sorted by path."""
    lines = []
    for p in sorted(root.rglob("*")):
        if p.is_dir():
            continue
        rel = p.relative_to(root).as_posix()
        if any(rel == n or rel.startswith(n) or p.name.startswith(n.rstrip("/"))
               for n in NOT_ARTIFACTS) or p.name.endswith(".tmp"):
            lines.append(f"{'(cache, not compared)':40}  {rel}")
            continue
        lines.append(f"{digest(p)}  {rel}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("roots", nargs="+", type=Path, help="workspace or data-set folders")
    args = ap.parse_args(argv)
    for root in args.roots:
        if not root.is_dir():
            print(f"Error: {root} is not a folder; build it first (make demo)", file=sys.stderr)
            return 1
        print(f"# {root}")
        print("\n".join(digest_tree(root)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
