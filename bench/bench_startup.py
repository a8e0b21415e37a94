"""The command's own start-up cost: CPU seconds (user + sys) of a fresh process.

Usage: python bench/bench_startup.py [--files 7797] [--reps 5] [--python PY ...]

Runs a bare ``python -c pass`` (the interpreter's own floor), ``weaklabel --help``, and
``weaklabel dedup --exact-only ROOT -w WS`` cold (a new workspace each run) on a one-file
root (the start-up alone) and on a tree of small files made by
``bench_images.many_files``, beside the pure-Python floor (``bench/exact_floor.py``:
interpreter, walk, a 4 KiB read of each same-size file) and ``jdupes -r`` on that tree;
median of ``--reps`` runs.
CPU seconds, not wall time: the machine is shared. Each ``--python`` (an interpreter
that imports some install of weaklabel, e.g. an older commit's) gets its own column,
interleaved run by run so load swings hit every column alike. One untimed run first, with
``PYTHONDONTWRITEBYTECODE`` dropped: an installed package has its ``.pyc`` files, and
compiling weaklabel's sources again on every run would cost more than its imports.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cpu_of(cmd: list[str]) -> float:
    """User + sys CPU seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=7797)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--python", action="append", default=[],
                    help="interpreter to run weaklabel with (repeatable; default: .venv's)")
    args = ap.parse_args()
    from bench_images import many_files

    tmp = Path(tempfile.mkdtemp(prefix="wl-startup-"))
    try:
        tree = many_files(tmp / "many", args.files)
        pythons = args.python or [str(ROOT / ".venv" / "bin" / "python")]
        ws = tmp / "ws"
        one = tmp / "one" / "d"
        one.mkdir(parents=True)
        (one / "a.jpg").write_bytes(b"one file")

        def wl(py: str, *argv: str) -> list[str]:
            # what the console script does (weaklabel.cli_fast:main, which hands all but
            # `dedup --exact-only` to weaklabel.cli:main), with the interpreter chosen;
            # an install older than cli_fast runs weaklabel.cli:main
            return [py, "-c", "import sys\ntry:\n    from weaklabel.cli_fast import main\n"
                    "except ImportError:\n    from weaklabel.cli import main\n"
                    "sys.argv[0] = 'weaklabel'; sys.exit(main())", *argv]

        def dedup(py: str, root: Path) -> list[str]:
            shutil.rmtree(ws, ignore_errors=True)  # cold: a new inventory every run
            return wl(py, "dedup", "--exact-only", str(root), "-w", str(ws), "-q", "-j", "1")

        cases: list[tuple[str, Callable[[str], list[str]]]] = [
            ("python -c pass", lambda py: [py, "-c", "pass"]),
            ("weaklabel --help", lambda py: wl(py, "--help")),
            ("weaklabel dedup --exact-only, 1 file, cold", lambda py: dedup(py, one.parent)),
            (f"weaklabel dedup --exact-only, {args.files:,} files, cold",
             lambda py: dedup(py, tree))]
        cases.append(("pure-Python floor (bench/exact_floor.py, same tree)",
                      lambda py: [py, str(ROOT / "bench" / "exact_floor.py"), str(tree)]))
        if shutil.which("jdupes"):
            cases.append(("jdupes -r (same tree)", lambda py: ["jdupes", "-r", "-q", str(tree)]))
        print(f"median CPU s (user + sys) of {args.reps} runs\n")
        for i, py in enumerate(pythons):
            print(f"[{i}] {py}")
        head = " | ".join(f"[{i}] CPU s" for i in range(len(pythons)))
        print(f"\n| {'command':48} | {head} |")
        print(f"|{'-' * 50}|" + "|".join("-" * 11 for _ in pythons) + "|")
        for name, make in cases:
            runs: list[list[float]] = [[] for _ in pythons]
            for py in pythons:
                cpu_of(make(py))  # writes the .pyc files; not counted
            for _ in range(args.reps):
                for i, py in enumerate(pythons):
                    runs[i].append(cpu_of(make(py)))
            cells = " | ".join(f"{median(r):9.3f}" for r in runs)
            print(f"| {name:48} | {cells} |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
