"""CLI commands of human review: ``weaklabel review queue|serve|export|import``.

``cli.py`` calls :func:`register`. Only typer and the standard library are imported at
module level; pandas, SQLite work and the web server load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from weaklabel.cli_common import (
    ConfigOpt,
    QuietOpt,
    WorkspaceOpt,
    not_an_artifact,
    resolve_config,
    setup_logging,
    stage_command,
    workspace_of,
)
from weaklabel.errors import UsageError

if TYPE_CHECKING:
    from weaklabel.config import Config
    from weaklabel.workspace import Workspace

review_app = typer.Typer(
    name="review",
    help="Human review: a queue of likely-wrong labels, a browser grid, decisions in and out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


OutputOpt = Annotated[Path, typer.Option("--output", "-o", dir_okay=False,
                                          help="CSV to write (atomically).")]
"""``-o FILE`` of queue and export: the same option, one definition."""


def _resolve(config: Path | None, workspace: Path | None, quiet: bool = True
             ) -> tuple[Config, Workspace]:
    """Every review command's start: logging, the config, its workspace."""
    setup_logging(quiet)
    cfg = resolve_config(config, {"workspace": str(workspace) if workspace else None})
    return cfg, workspace_of(cfg)


@review_app.command("queue")
@stage_command
def queue(
    output: OutputOpt,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", "-n", min=1, help="Write only the first N items (default: all).")] = None,
    random_rate: Annotated[float, typer.Option(
        min=0.0, max=0.5, help="Share of items in the random slice for precision.")] = 0.05,
    include_decided: Annotated[bool, typer.Option(
        help="Keep items that already have a decision.")] = False,
    order: Annotated[str | None, typer.Option(
        help="Queue order: default, audit, coverage, confident, cl or cl-no-density "
             "(default: the config's review.queue).")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Write the review queue, likely-wrong labels first, with a 5 % random slice.

    Columns: post_id, image, label, confidence, why.

    Example: weaklabel review queue -w build --limit 500 -o queue.csv
    """
    from weaklabel.cli_common import not_an_artifact
    from weaklabel.review.triage import write_queue

    cfg, ws = _resolve(config, workspace, quiet)
    not_an_artifact(output, ws, what="queue", example="queue.csv")
    q = write_queue(ws, limit=limit, output=output, random_rate=random_rate,
                    include_decided=include_decided, order=order or cfg.review.queue)
    typer.echo(f"{len(q)} items ({int(q['random'].sum())} in the random slice) → {output}")


@review_app.command("export")
@stage_command
def export_cmd(
    output: OutputOpt,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    journal: Annotated[bool, typer.Option(
        help="Every journal row (undos too), not only the standing decisions.")] = False,
) -> None:
    """Write the review decisions as CSV (post_id, image, label, reviewer, …).

    Example: weaklabel review export -w build -o decisions.csv
    """
    from weaklabel.review.store import DECISIONS_DB
    from weaklabel.review.transfer import export_decisions

    _, ws = _resolve(config, workspace)
    not_an_artifact(output, ws, what="CSV", example="decisions.csv")
    if not ws.path(DECISIONS_DB).exists():
        raise UsageError(f"{ws.path(DECISIONS_DB)} does not exist; review something first "
                         "(weaklabel review serve) or import decisions")
    n = export_decisions(ws, output, journal=journal)
    typer.echo(f"{n} decisions → {output}")


@review_app.command("import")
@stage_command
def import_cmd(
    file: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False,
        help="Decisions CSV (post_id or image, label, reviewer) or a Ground Truth "
             "output manifest.")],
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    labelmap: Annotated[Path | None, typer.Option(
        "--labelmap", "-l", exists=True, dir_okay=False,
        help="Label map: accepts display names as labels (default: config).")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Import decisions; write reviewed_labels.parquet and reviewed_images.parquet.

    Importing the same file twice adds nothing. An empty label means none of the labels.

    Example: weaklabel review import decisions.csv -w build
    """
    from weaklabel.review.transfer import import_decisions

    cfg, ws = _resolve(config, workspace, quiet)
    ws.require("post_labels.parquet")
    s = import_decisions(ws, file, labelmap=labelmap or cfg.labelmap)
    extra = f", {s['skipped']} machine-labelled lines skipped" if s["skipped"] else ""
    typer.echo(f"{s['read']} decisions read: {s['added']} new, {s['already']} already "
               f"imported{extra}; reviewed {s['reviewed_posts']} posts, "
               f"{s['reviewed_images']} image verdicts → {ws.root}/reviewed_labels.parquet")


@review_app.command("serve")
@stage_command
def serve_cmd(
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    reviewers: Annotated[str, typer.Option(
        help="Comma list of reviewer names; each gets its own invite link.")] = "reviewer",
    host: Annotated[str, typer.Option(
        help="Address to bind; anything but loopback exposes the links to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")
                    ] = 8765,
    page_size: Annotated[int, typer.Option(min=40, max=60, help="Thumbnails per page.")
                         ] = 48,
    per_item: Annotated[int, typer.Option(
        min=0, max=5, help="Reviewers per item (0: everyone reviews everything); with 2 or "
                           "more, a disagreement goes to one more reviewer.")] = 1,
    quiet: QuietOpt = False,
) -> None:
    """Serve the review grid; print one invite link per reviewer.

    Images come from the workspace's inventory (run purge or dedup first); text-only
    posts show their caption. Decisions are saved as they are clicked; stopping the
    server (Ctrl-C) writes reviewed_labels.parquet and reviewed_images.parquet.

    Example: weaklabel review serve -w build --reviewers ana,ben
    """
    from weaklabel.review.server import serve

    cfg, ws = _resolve(config, workspace, quiet)
    names = [n.strip() for n in reviewers.split(",") if n.strip()]
    bad = [n for n in names if not n.replace("-", "").replace("_", "").isalnum()]
    if not names or bad:
        raise UsageError(f"--reviewers {reviewers!r}: give names of letters, digits, - or _, "
                         "separated by commas")
    serve(ws, reviewers=names, host=host, port=port, page_size=page_size,
              labelmap=cfg.labelmap, per_item=per_item, order=cfg.review.queue,
              echo=typer.echo)


def register(app: typer.Typer) -> None:
    """Add the ``review`` command group to ``app``."""
    app.add_typer(review_app, name="review")
