"""CLI commands for image hygiene: ``purge``, ``dedup``, ``restore``.

``cli.py`` lists them in its command table and builds one when it is invoked. Only typer
and the standard library are imported at module level; PIL, imagehash, numpy and pandas
load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from weaklabel.cli_common import (
    ConfigOpt,
    PathOrURL,
    QuietOpt,
    WorkersOpt,
    WorkspaceOpt,
    echo_report,
    local_image_root,
    resolve_config,
    setup_logging,
    workspace_of,
)

if TYPE_CHECKING:
    from weaklabel.images.purge import Applied

RootArg = Annotated[
    str,
    typer.Argument(callback=PathOrURL(file_okay=False),
                   help="Image root: the folder of date folders and image files, or "
                        "s3://bucket/prefix."),
]
ApplyOpt = Annotated[
    bool,
    typer.Option("--apply", help="Move files into WORKSPACE/quarantine (default: only report)."),
]


def _print_applied(applied: Applied | None) -> None:
    if applied is None:
        return
    typer.echo(f"quarantined {len(applied.moved)} file(s) in run {applied.run_id}")
    from weaklabel.containment import display_path

    for path, why in applied.cancelled:
        typer.echo(f"not moved: {display_path(path)}: {why.removeprefix('not moved: ')}")
    if applied.failed:
        from weaklabel.errors import WeaklabelError

        path, why = applied.failed[0]
        raise WeaklabelError(
            f"{len(applied.failed)} file(s) could not be moved into quarantine, e.g. "
            f"{display_path(path)}: {why.removeprefix('not moved: ')}; fix the cause (free "
            "space, permissions) and re-run: moved files stay moved, the rest are tried again")


def purge(
    root: RootArg,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    apply: ApplyOpt = False,
    workers: WorkersOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Find corrupt files (empty, not an image, truncated, undecodable, decompression
    bombs) and write WORKSPACE/purge.csv; with --apply, quarantine them.

    Example: weaklabel purge images/ -w build --apply
    """
    setup_logging(quiet)
    from weaklabel.images.purge import run_purge

    cfg = resolve_config(config, {"workspace": str(workspace) if workspace else None,
                                  "images.workers": workers, "images.root": root})
    cfg = local_image_root(cfg, root, quiet=quiet)
    res = run_purge(workspace_of(cfg), cfg, progress=not quiet, apply=apply)
    for status, n in res.summary.counts.items():
        typer.echo(f"{status}\t{n}")
    echo_report(res)
    _print_applied(res.summary.applied)


def dedup(
    root: RootArg,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    posts: Annotated[
        str | None,
        typer.Option("--posts", callback=PathOrURL(dir_okay=False),
                     help="Posts table (path or s3:// URL): keep the copy of the most "
                          "engaging post."),
    ] = None,
    apply: ApplyOpt = False,
    method: Annotated[
        str | None,
        typer.Option("--method", help="Perceptual hash: phash, dhash, ahash or whash."),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option("--threshold", min=0, help="Largest Hamming distance of a near duplicate."),
    ] = None,
    exact_only: Annotated[
        bool,
        typer.Option("--exact-only",
                     help="Only byte-identical copies: no image is decoded or hashed."),
    ] = False,
    workers: WorkersOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Find exact (SHA-1) and near (perceptual hash) duplicates; write
    WORKSPACE/duplicates.csv; with --apply, quarantine all but one copy per group.

    Example: weaklabel dedup images/ -w build --posts posts.csv --threshold 6
    """
    setup_logging(quiet)
    from weaklabel.images.dedup import run_dedup

    cfg = resolve_config(config, {"workspace": str(workspace) if workspace else None,
                                  "images.workers": workers, "images.hash_method": method,
                                  "images.near_threshold": threshold,
                                  "images.root": root})
    cfg = local_image_root(cfg, root, quiet=quiet)
    table = None
    if posts is not None:
        from weaklabel.storage import local_input

        table = Path(local_input(posts, workspace_of(cfg).root, cfg.storage, setting="--posts")
                     or posts)
    res = run_dedup(workspace_of(cfg), cfg, progress=not quiet, posts=table, apply=apply,
                    exact_only=exact_only)
    from weaklabel.containment import display_path
    from weaklabel.stage import format_report

    # A workspace name that is not UTF-8 prints as \xNN (display_path), never as raw
    # bytes a terminal cannot show; the fast path (cli_fast) prints the same line.
    typer.echo(display_path(format_report(res)))
    _print_applied(res.summary.applied)


def restore(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Only this run id (default: every run).")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Put quarantined files back where they were; never overwrites a file that has
    reappeared at its original path (it is reported instead).

    Example: weaklabel restore -w build --run purge-20240101T120000
    """
    setup_logging(quiet)
    from weaklabel.containment import display_path
    from weaklabel.images.quarantine import run_restore

    cfg = resolve_config(config, {"workspace": str(workspace) if workspace else None})
    res = run_restore(workspace_of(cfg), cfg, progress=not quiet, run=run).summary
    typer.echo(f"restored {len(res.restored)} file(s)")
    for path, why in res.conflicts:
        typer.echo(f"not restored: {display_path(path)}: {why}", err=True)
    if res.conflicts:
        raise typer.Exit(1)

