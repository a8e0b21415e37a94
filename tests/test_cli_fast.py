"""The console entry point's fast ``dedup --exact-only``: the same exit code, output,
errors and files as the typer command, and a start-up without typer or any heavy
library."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_cli import HEAVY

FAST = ("import os, sys\n"
        "try:\n"
        "    from weaklabel.cli_fast import main\n"
        "    sys.argv[0] = 'weaklabel'\n"
        "    main()\n"
        "finally:\n"
        "    with open(os.environ['WL_MARK'], 'w') as f:\n"
        "        f.write(repr(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "                            ('typer', 'click', 'pathlib', 'dataclasses', 'typing'))))\n")
"""What the console script runs (``weaklabel.cli_fast:main``); then which of typer,
click, pathlib, dataclasses and typing it imported."""
TYPER = ("import sys\n"
         "from weaklabel.cli import main\n"
         "sys.argv[0] = 'weaklabel'\n"
         "main()\n")
"""The typer command alone, as the console script ran before the fast path."""


def _tree(root: Path) -> Path:
    """Byte copies in several folders, a hard link, empty files, a symlink, a comma and
    a non-UTF-8 byte in names, a lone file of a shared size: every case the grouping
    and the CSVs distinguish."""
    for rel, body in (("20190301/a.jpg", b"A" * 9000), ("20190302/a copy.jpg", b"A" * 9000),
                      ("20190303/sub/a,3.jpg", b"A" * 9000), ("20190301/b.jpg", b"B" * 100),
                      ("20190302/b.jpg", b"B" * 100), ("20190301/c.jpg", b"C" * 100),
                      ("20190301/empty.jpg", b""), ("20190302/empty.jpg", b""),
                      ("top.jpg", b"T" * 5000)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    os.link(root / "20190302/b.jpg", root / "20190303/b_link.jpg")
    (root / "20190303" / "to_a.jpg").symlink_to(root / "20190301/a.jpg")
    with open(os.fsencode(root / "20190303") + b"/t\xffop.jpg", "wb") as f:
        f.write(b"T" * 5000)
    return root


def _run(code: str, args: list[str], mark: Path) -> subprocess.CompletedProcess[str]:
    """One run, in the folder of ``mark`` (where relative paths start)."""
    env = {**os.environ, "WL_MARK": str(mark), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=mark.parent)


def _files(ws: Path, base: Path) -> str:
    """Every file a run left in the workspace, metas without their clock readings,
    the inventory as its rows (without the inodes and times of this copy of the tree)
    and meta; ``base`` (where this copy of the tree is) as ``BASE``."""
    out: dict[str, Any] = {}
    if not ws.is_dir():
        return repr(out)
    for p in sorted(ws.rglob("*")):
        name = p.relative_to(ws).as_posix()
        if p.is_dir() or p.name in (".lock", "inventory.sqlite-wal", "inventory.sqlite-shm"):
            continue
        if p.name == "inventory.sqlite":
            db = sqlite3.connect(p)
            out[name] = (db.execute("SELECT path, kind, size, sha1, partial, width, height, "
                                    "format, status, reason FROM files ORDER BY path"
                                    ).fetchall(),
                         db.execute("SELECT * FROM meta ORDER BY key").fetchall())
            db.close()
        elif name.endswith(".meta.json"):
            meta = json.loads(p.read_text(encoding="utf-8"))
            meta.pop("elapsed_s")
            meta.pop("written_at")
            out[name] = meta
        else:
            out[name] = p.read_bytes()
    return repr(out).replace(str(base), "BASE")


def _clockless(text: str) -> str:
    return re.sub(r" in \d+\.\d\ds ", " in X s ", text)


CASES = [
    # (arguments, whether the fast path takes them)
    (["dedup", "--exact-only", "{root}", "-w", "{ws}", "-q", "-j", "1"], True),
    (["dedup", "{root}", "--exact-only", "--workspace={ws}/", "--quiet", "--workers=2"], True),
    (["dedup", "--exact-only", "./{root_rel}", "-w", "{ws}"], True),  # not quiet: INFO logs
    (["dedup", "--exact-only", "{root}", "-w", "{root}/ws"], True),  # the walk skips it
    (["dedup", "--exact-only", "{root}", "-w", "{ws}/w\udcffs", "-q"], True),  # not UTF-8
    (["dedup", "--exact-only", "{root}", "-w", "{file}/ws", "-q"], True),  # cannot create
    (["dedup", "--exact-only", "{tmp}/nowhere", "-w", "{ws}", "-q"], False),
    (["dedup", "--exact-only", "{file}", "-w", "{ws}", "-q"], False),
    (["dedup", "--exact-only", "{root}", "-w", "{file}", "-q"], False),
    (["dedup", "--exact-only", "{root}", "-w", "{ws}", "-q", "-j", "two"], False),
    (["dedup", "--exact-only", "{root}", "-w", "{ws}", "-q", "-j", "5000"], False),
    (["dedup", "--exact-only", "{root}", "{root}", "-w", "{ws}"], False),
    (["dedup", "--exact-only", "{root}", "-w", "{ws}", "--bogus"], False),
    (["dedup", "--exact-only", "{root}", "-qw", "{ws}"], False),
    (["dedup", "--exact-only", "--help"], False),
    (["dedup", "{root}", "-w", "{ws}", "-q"], False),  # not exact-only: decodes images
]


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "fast"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_the_fast_path_and_typer_give_the_same_result(tmp_path: Path, argv: list[str],
                                                      fast: bool) -> None:
    results = []
    for code in (FAST, TYPER):
        base = tmp_path / ("fast" if code is FAST else "typer")
        root = _tree(base / "img")
        (base / "a_file").write_text("not a folder")
        args = [a.format(root=root, root_rel=root.relative_to(base), ws=base / "ws",
                         file=base / "a_file", tmp=base) for a in argv]
        runs = []
        for _ in range(2):  # cold, then again on the same workspace
            res = _run(code, args, base / "mark")
            ws = root / "ws" if "{root}/ws" in argv else base / "ws"
            text = (res.returncode, _clockless(res.stdout), res.stderr)
            runs.append((repr(text).replace(str(base), "BASE"), _files(ws, base)))
        results.append(runs)
        if code is FAST:
            imported = (base / "mark").read_text()
            assert (imported == "[]") == fast, imported
    (fast_runs, typer_runs) = results
    assert fast_runs[0][0] == typer_runs[0][0]
    assert fast_runs[1][0] == typer_runs[1][0]
    assert [files for _, files in fast_runs] == [files for _, files in typer_runs]
    code = typer_runs[0][0]
    if fast and "{file}/ws" not in argv:
        assert "exact and 0 near duplicates" in code and "Traceback" not in code
        dup = typer_runs[0][1]
        assert "hard link of 20190302/b.jpg" in dup and '"20190303/sub/a,3.jpg"' in dup
        assert "20190303/t\\\\xffop.jpg" in dup and "empty.jpg" not in dup.split(
            "duplicates.csv': ")[1].split("duplicates.csv.meta.json'")[0]
    if "\udcff" in "".join(argv):  # the workspace's name as \xNN, on both paths
        assert "/w\\\\xffs/duplicates.csv, BASE/ws/w\\\\xffs/dedup_excluded.csv" in code


def test_an_error_of_the_fast_path_is_one_line(tmp_path: Path) -> None:
    root = _tree(tmp_path / "img")
    (tmp_path / "a_file").write_text("x")
    res = _run(FAST, ["dedup", "--exact-only", str(root), "-w", str(tmp_path / "a_file/ws"),
                      "-q"], tmp_path / "mark")
    assert res.returncode == 1
    assert res.stderr.startswith("Error: cannot create workspace ") and res.stderr.count(
        "\n") == 1
    assert (tmp_path / "mark").read_text() == "[]"


def test_the_fast_options_are_the_typer_commands_own() -> None:
    """One list of options: each the fast parser takes is ``weaklabel dedup``'s, with
    the same parameter and the same need of a value; ``--workers``' bound is the
    config's, and 0 means as many workers as the config makes of it."""
    import typer.main

    from weaklabel.cli import app
    from weaklabel.cli_fast import FAST_OPTIONS, MAX_WORKERS, cores
    from weaklabel.config import SETTINGS, resolve_workers

    command = typer.main.get_command(app).commands["dedup"]  # type: ignore[attr-defined]
    by_opt = {o: p for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for opt, (name, takes_value) in FAST_OPTIONS.items():
        assert by_opt[opt].name == name, opt
        assert (not by_opt[opt].is_flag) == takes_value, opt
    assert SETTINGS["images.workers"].hi == MAX_WORKERS and SETTINGS["images.workers"].lo == 0
    assert cores() == resolve_workers(0)


def test_the_exact_path_constants_are_the_contracts() -> None:
    from weaklabel import contracts
    from weaklabel.images import contracts as image_contracts
    from weaklabel.images import exact

    assert tuple(image_contracts.DUPLICATES.names) == exact.DUPLICATES_COLUMNS
    assert tuple(image_contracts.DEDUP_EXCLUDED.names) == exact.EXCLUDED_COLUMNS
    assert {*image_contracts.CORRUPT_STATUSES, "unreadable"} == exact.NOT_GROUPED
    assert exact.STORAGE_STATE == contracts.STORAGE_STATE


def test_the_console_script_is_the_fast_entry_point() -> None:
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'weaklabel = "weaklabel.cli_fast:main"' in text
    script = shutil.which("weaklabel", path=os.path.dirname(sys.executable))
    assert script is not None and "weaklabel.cli_fast" in Path(script).read_text()


def test_exact_dedup_from_the_console_script_imports_no_heavy_library(tmp_path: Path) -> None:
    """``weaklabel dedup --exact-only`` as a user types it loads no typer, click,
    pathlib, dataclasses or typing (tens of ms of start-up), nor any heavy library, nor
    ``re``, ``enum``, ``json`` or ``csv``, nor the ``sqlite3`` and ``hashlib`` wrappers
    (``datetime``, OpenSSL's other constructors) around the C modules it uses."""
    root = _tree(tmp_path / "img")
    watch = (*HEAVY, "typer", "click", "weaklabel.cli", "weaklabel.config",
             "weaklabel.stage", "weaklabel.workspace", "weaklabel.images.dedup",
             "re", "enum", "json", "csv",  # milliseconds each: written without them
             "sqlite3", "datetime", "hashlib")  # _sqlite3 and _hashlib themselves
    code = FAST.replace("('typer', 'click', 'pathlib', 'dataclasses', 'typing')",
                        repr(watch))
    res = _run(code, ["dedup", "--exact-only", str(root), "-w", str(tmp_path / "ws"), "-q"],
               tmp_path / "mark")
    assert res.returncode == 0, res.stderr
    assert "3 groups, 5 exact and 0 near" in res.stdout
    assert (tmp_path / "mark").read_text() == "[]"
