"""The console entry point: ``weaklabel dedup --exact-only`` without typer, the rest
through it.

jdupes settles 8,000 small files in ~0.06 CPU s; building the typer command alone costs
more than that (importing typer and click ~0.06 s, the command's config, stage and
dedup modules ~0.05 s). So :func:`main` first tries :func:`parse_exact` on the
arguments: a ``dedup --exact-only ROOT -w WS`` with only the options it knows
(:data:`FAST_OPTIONS`, which a test holds equal to the typer command's), values it can
check as typer would, a local root folder and a workspace with no posts or bucket
mirror goes straight to :func:`weaklabel.images.exact.dedup_exact`, the same call
``run_dedup(exact_only=True)`` makes, and prints what the typer command prints.
Anything else (``--help``, another option, a value typer might reject, a config file, a
URL) falls through to :func:`weaklabel.cli.main` untouched, so help, usage errors and
every other command stay exactly as typer gives them. Standard library only.
"""

from __future__ import annotations

import os
import sys

FAST_OPTIONS = {
    "-w": ("workspace", True), "--workspace": ("workspace", True),
    "-j": ("workers", True), "--workers": ("workers", True),
    "-q": ("quiet", False), "--quiet": ("quiet", False),
    "--exact-only": ("exact_only", False),
}
"""Option → (the typer command's parameter, whether it takes a value): every option the
fast path accepts; a test checks each against ``weaklabel dedup``'s own."""

MAX_WORKERS = 1024
"""The largest ``--workers`` the config accepts (``images.workers``; a test holds the two
equal): a larger one is typer's usage error to give."""


def _pathlib_str(text: str) -> str | None:
    """``str(Path(text))`` (what typer makes of a path option) for a POSIX path, or None
    where pathlib's rules are not this simple (an empty path, a leading ``//``)."""
    if not text or (text.startswith("//") and not text.startswith("///")):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    lead = "/" if text.startswith("/") else ""
    return lead + "/".join(parts) if parts else (lead or ".")


def parse_exact(argv: list[str]) -> dict[str, object] | None:
    """The options of a ``dedup --exact-only`` run the fast path can take, or None.

    Only ``dedup`` with ``--exact-only``, one image root (an existing local folder), a
    workspace (``-w``: a folder or nothing yet, without the posts tables or a bucket
    mirror that need the general path), ``-q`` and ``-j N`` (plain digits, 0 to
    :data:`MAX_WORKERS`), as separate words or ``--long=value``. Everything else is
    None: typer parses it.
    """
    if not argv or argv[0] != "dedup":
        return None
    opts: dict[str, object] = {}
    roots: list[str] = []
    args = iter(argv[1:])
    for a in args:
        if not a.startswith("-") or a == "-":
            roots.append(a)
            continue
        name, eq, value = a.partition("=") if a.startswith("--") else (a, "", "")
        spec = FAST_OPTIONS.get(name)
        if spec is None:
            return None  # --help, --, -qj1, -wDIR, another option: typer's to read
        param, takes_value = spec
        if not takes_value:
            if eq:
                return None
            opts[param] = True
            continue
        if not eq:
            value = next(args, "")
        if not value or value.startswith("-"):
            return None
        opts[param] = value
    if len(roots) != 1 or not opts.get("exact_only") or "workspace" not in opts:
        return None
    root, ws = _pathlib_str(roots[0]), _pathlib_str(str(opts["workspace"]))
    if root is None or ws is None or "://" in roots[0] or not os.path.isdir(root):
        return None
    if os.path.exists(ws) and not os.path.isdir(ws):
        return None
    from weaklabel.images.exact import STORAGE_STATE

    # a keep policy by engagement reads Parquet; a bucket mirror is read in place
    if any(os.path.exists(os.path.join(ws, n)) for n in (
            STORAGE_STATE, "posts.parquet", "post_images.parquet")):
        return None
    workers = opts.get("workers", "0")
    assert isinstance(workers, str)
    if not (workers.isascii() and workers.isdigit()) or int(workers) > MAX_WORKERS:
        return None
    return {"root": root, "workspace": ws, "workers": int(workers),
            "quiet": bool(opts.get("quiet"))}


def cores() -> int:
    """One worker per available core, as ``images.workers: 0`` means
    (:func:`weaklabel.config.resolve_workers`)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def exact_command(opts: dict[str, object]) -> int:
    """``weaklabel dedup --exact-only`` as the typer command runs it: the same library
    call, the same line on stdout, the same one-line errors and exit codes."""
    from weaklabel.wsbase import ensure_dir, error_exit, one_line, setup_logging

    ws, root, quiet = str(opts["workspace"]), str(opts["root"]), bool(opts["quiet"])
    if not quiet:
        setup_logging(False)
    # Quiet, the typer command sets warnings to stderr as bare messages: what Python's
    # last-resort handler prints without importing or configuring logging.
    workers = int(opts["workers"])  # type: ignore[call-overload]
    try:
        from weaklabel.images.exact import dedup_exact, exact_params, keep_rank, summary_text

        ensure_dir(ws)
        summary, _, elapsed = dedup_exact(ws, root, rank=keep_rank(),
                                        workers=workers or cores(), progress=not quiet,
                                        params=exact_params(None, False, None))
    except BaseException as exc:
        res = error_exit(exc)
        if res is None:
            raise
        sys.stderr.write(one_line(res[0]) + "\n")
        return res[1]
    from weaklabel.containment import display_path

    where = ", ".join(n if ws == "." else f"{ws.rstrip('/')}/{n}"
                      for n in ("duplicates.csv", "dedup_excluded.csv"))
    text = summary_text(summary["groups"], summary["exact"], summary["near"],
                        summary["excluded"])
    # a workspace name that is not UTF-8 prints as \xNN, as the typer command prints it
    sys.stdout.write(display_path(f"{text} in {elapsed:.2f}s → {where}") + "\n")
    return 0


def main() -> None:
    """Console-script entry point."""
    opts = parse_exact(sys.argv[1:])
    if opts is not None:
        raise SystemExit(exact_command(opts))
    from weaklabel.cli import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
