"""``weaklabel review serve``: the review grid as a Starlette app on uvicorn.

Every URL carries a reviewer's secret token (``/r/<token>/…``); an unknown token gets
403, any other path 404. Images are served by queue item id only: the item names an
image path, the path must be a readable ``ok`` file in the workspace's image inventory
(``inventory.sqlite``, opened read-only), and the file is opened under the root the
inventory was built for. Nothing from the request is ever joined to a path.

API (JSON): ``GET api/state`` (labels with this reviewer's progress), ``GET api/page?label=L``
(the first page of L with items this reviewer has not decided, with the decisions already
taken on it), ``POST api/decide`` (``{"decisions": [{"id", "item", "action", "label"?,
"undoes"?}]}``; each decision is its own transaction; a retried id is acknowledged again,
not doubled). A reviewer sees and undoes only their own decisions.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from weaklabel.errors import WeaklabelError
from weaklabel.review.store import Decision, DecisionStore, effective
from weaklabel.review.triage import RANDOM_WHY

log = logging.getLogger(__name__)

MAX_BATCH = 200
"""Most decisions one POST may carry (a page is at most 60 items)."""


class ImageSource:
    """Image bytes by inventory path, read-only, thumbnails cached in the workspace."""

    def __init__(self, ws_root: Path, *, size: int = 160) -> None:
        from weaklabel.images.inventory import INVENTORY

        self.db: sqlite3.Connection | None = None
        self.root: str | None = None
        self._lock = threading.Lock()
        self.size = size
        self.thumbs_dir = Path(ws_root) / "thumbs"
        p = Path(ws_root) / INVENTORY
        if p.exists():
            self.db = sqlite3.connect(f"file:{p}?mode=ro", uri=True, check_same_thread=False)
            row = self.db.execute("SELECT value FROM meta WHERE key='root'").fetchone()
            self.root = json.loads(row[0]) if row else None

    def available(self, rel: str) -> bool:
        """Is ``rel`` a decodable file of the inventory?"""
        if self.db is None or self.root is None or not rel:
            return False
        with self._lock:
            row = self.db.execute("SELECT kind, status FROM files WHERE path=?",
                                  (os.fsencode(rel),)).fetchone()
        return bool(row) and row[0] == "file" and row[1] == "ok"

    def thumbnail(self, rel: str) -> bytes | None:
        if not self.available(rel):
            return None
        assert self.root is not None
        path = os.path.realpath(os.path.join(self.root, rel))
        if not path.startswith(self.root.rstrip(os.sep) + os.sep):
            return None  # a symlink out of the root since the scan
        from weaklabel.dataset.report import ThumbCache

        with self._lock:  # the cache's temporary name is per process, not per thread
            return ThumbCache(self.thumbs_dir, self.size).get(Path(path))


def _key(it: Mapping[str, Any]) -> tuple[str, str]:
    return (it["post_id"], it["image"])


class Assigner:
    """Which items each reviewer's page holds.

    ``per_item`` reviewers decide each item (0: every reviewer reviews everything). With
    two or more, items whose first ``per_item`` verdicts disagree go to one more
    reviewer. A page is held for its reviewer until all its items are decided (so a
    reload shows the same page, flags and all), and the items it holds are not offered to
    others meanwhile, so a team splits the queue instead of repeating each other.
    """

    def __init__(self, by_label: Mapping[str, list[dict[str, Any]]], *, per_item: int,
                 page_size: int) -> None:
        self.by_label = by_label
        self.per_item = per_item
        self.page_size = page_size
        self.pages: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def need(self, votes: Mapping[str, Decision]) -> int:
        """How many reviewers an item needs, given its standing decisions."""
        from weaklabel.review.summary import verdict

        if self.per_item <= 0:
            return 1 << 30
        first = sorted(votes.values(), key=lambda d: d.seq or 0)[:self.per_item]
        if self.per_item >= 2 and len(first) == self.per_item and \
                len({verdict(d) for d in first}) > 1:
            return self.per_item + 1
        return self.per_item

    def done(self, label: str, votes: Mapping[tuple[str, str], Mapping[str, Decision]],
             reviewer: str) -> int:
        """Items of ``label`` finished: by this reviewer (per_item 0) or by the team."""
        items = self.by_label.get(label, [])
        if self.per_item <= 0:
            return sum(reviewer in votes.get(_key(it), {}) for it in items)
        return sum(len(votes.get(_key(it), {})) >= self.need(votes.get(_key(it), {}))
                   for it in items)

    def page(self, reviewer: str, label: str,
             votes: Mapping[tuple[str, str], Mapping[str, Decision]]) -> list[dict[str, Any]]:
        """The reviewer's current page of ``label`` (a new one when the last is done)."""

        def open_(who: str, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [it for it in page if who not in votes.get(_key(it), {})]

        with self._lock:
            cur = self.pages.get((reviewer, label))
            if cur and open_(reviewer, cur):
                return cur
            held: Counter[tuple[str, str]] = Counter(
                _key(it) for (who, lab), page in self.pages.items()
                if who != reviewer and lab == label for it in open_(who, page))
            out = []
            for it in self.by_label.get(label, []):
                v = votes.get(_key(it), {})
                if reviewer not in v and len(v) + held[_key(it)] < self.need(v):
                    out.append(it)
                    if len(out) == self.page_size:
                        break
            self.pages[(reviewer, label)] = out
            return out


def create_app(ws_root: Path, *, page_size: int = 48, labelmap: str | None = None,
               per_item: int = 1) -> Any:
    """The Starlette application of one workspace's review."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from weaklabel.review.page import PAGE_HTML

    store = DecisionStore.open(ws_root)
    images = ImageSource(ws_root)
    counts = store.label_counts()
    names: dict[str, str] = {}
    order = sorted(counts)
    if labelmap and Path(labelmap).is_file():
        from weaklabel.labels.labelmap import load_labelmap

        lm = load_labelmap(labelmap)
        names = {lab.id: lab.name for lab in lm.labels}
        order = lm.ids + [lab for lab in order if lab not in lm.ids]
    by_id = {it["id"]: it for it in store.items()}
    by_label: dict[str, list[dict[str, Any]]] = {}
    for it in sorted(by_id.values(), key=lambda r: r["rank"]):
        by_label.setdefault(it["label"], []).append(it)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer",
               "Content-Security-Policy": "default-src 'none'; img-src 'self'; "
               "style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'"}

    def who(request: Request) -> str | None:
        return store.reviewer_of(str(request.path_params.get("token", "")))

    def forbidden() -> Response:
        return Response("unknown or revoked invite link\n", status_code=403,
                        media_type="text/plain", headers=headers)

    assigner = Assigner(by_label, per_item=per_item, page_size=page_size)

    def votes() -> dict[tuple[str, str], dict[str, Decision]]:
        out: dict[tuple[str, str], dict[str, Decision]] = {}
        for (r, p, i), d in effective(store.decisions()).items():
            out.setdefault((p, i), {})[r] = d
        return out

    def progress(reviewer: str, v: Mapping[tuple[str, str], Mapping[str, Decision]]
                 ) -> list[dict[str, Any]]:
        return [{"id": lab, "name": names.get(lab, lab), "total": len(by_label.get(lab, [])),
                 "done": assigner.done(lab, v, reviewer)}
                for lab in order if lab in by_label]

    def page(request: Request) -> Response:
        if who(request) is None:
            return forbidden()
        return HTMLResponse(PAGE_HTML, headers=headers)

    def state(request: Request) -> Response:
        reviewer = who(request)
        if reviewer is None:
            return forbidden()
        return JSONResponse({"reviewer": reviewer, "labels": progress(reviewer, votes()),
                             "choices": [{"id": lab, "name": names.get(lab, lab)}
                                         for lab in order],
                             "page_size": page_size}, headers=headers)

    def get_page(request: Request) -> Response:
        reviewer = who(request)
        if reviewer is None:
            return forbidden()
        label = request.query_params.get("label", "")
        v = votes()
        decided = {k: mine[reviewer] for k, mine in v.items() if reviewer in mine}
        chunk = assigner.page(reviewer, label, v)
        out = []
        for it in chunk:
            d = decided.get((it["post_id"], it["image"]))
            out.append({"id": it["id"], "post_id": it["post_id"], "label": it["label"],
                        "confidence": it["confidence"], "why": it["why"],
                        "caption": it["caption"][:300], "evidence": it["evidence"][:200],
                        "has_image": bool(it["image"]) and images.available(it["image"]),
                        "image": it["image"],
                        "decision": None if d is None else
                        {"id": d.id, "action": d.action, "label": d.label}})
        return JSONResponse({"label": label, "items": out, "labels": progress(reviewer, v)},
                            headers=headers)

    async def decide(request: Request) -> Response:
        reviewer = who(request)
        if reviewer is None:
            return forbidden()
        try:
            body = await request.json()
            rows = body["decisions"]
            assert isinstance(rows, list) and len(rows) <= MAX_BATCH
        except Exception:
            return JSONResponse({"error": f"send {{\"decisions\": [...]}} with at most "
                                          f"{MAX_BATCH} decisions"}, 400, headers=headers)
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_decide_rows, reviewer, rows)

    def _decide_rows(reviewer: str, rows: list[Any]) -> Response:
        acked, errors = [], []
        for r in rows:
            try:
                d = _to_decision(reviewer, r)
                stored, new = store.record(d)
                acked.append({"id": stored.id, "new": new, "seq": stored.seq})
            except (WeaklabelError, KeyError, TypeError, ValueError) as exc:
                rid = r.get("id") if isinstance(r, dict) else None
                errors.append({"id": rid, "error": str(exc).strip("'")})
        return JSONResponse({"acked": acked, "errors": errors}, 422 if errors else 200,
                            headers=headers)

    def _to_decision(reviewer: str, r: dict[str, Any]) -> Decision:
        action = str(r["action"])
        did = str(r["id"])
        if action == "undo":
            undoes = r.get("undoes")
            if not undoes:  # "undo my last": the latest standing decision
                mine = store.decisions(reviewer)
                retry = next((x for x in mine if x.id == did), None)
                live = sorted(effective(mine).values(), key=lambda x: x.seq or 0)
                if retry is not None:
                    undoes = retry.undoes
                elif not live:
                    raise WeaklabelError("nothing to undo")
                else:
                    undoes = live[-1].id
            return Decision(did, reviewer, "", action="undo", undoes=str(undoes))
        it = by_id.get(int(r["item"]))
        if it is None:
            raise WeaklabelError(f"no item {r['item']!r}")
        label = str(r.get("label", "")) if action == "relabel" else \
            (it["label"] if action == "accept" else "")
        if action == "relabel" and label and label not in counts and label not in names:
            raise WeaklabelError(f"unknown label {label!r}")
        return Decision(did, reviewer, it["post_id"], it["image"], it["label"], action, label,
                        slice=it["why"] == RANDOM_WHY)

    def image(request: Request) -> Response:
        if who(request) is None:
            return forbidden()
        it = by_id.get(int(request.path_params["item"]))
        data = images.thumbnail(it["image"]) if it else None
        if data is None:
            return Response("no such image\n", 404, media_type="text/plain")
        return Response(data, media_type="image/jpeg",
                        headers={**headers, "Cache-Control": "private, max-age=3600"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return Response("not found\n", 404, media_type="text/plain")

    routes = [
        Route("/r/{token}/", page),
        Route("/r/{token}/api/state", state),
        Route("/r/{token}/api/page", get_page),
        Route("/r/{token}/api/decide", decide, methods=["POST"]),
        Route("/r/{token}/img/{item:int}", image),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found})
    app.state.store = store
    return app


def prepare(ws_root: Path, reviewers: list[str]) -> dict[str, str]:
    """Refresh the queue in the store and make (or reuse) each reviewer's token."""
    from weaklabel.review.triage import run_queue
    from weaklabel.workspace import Workspace

    q = run_queue(Workspace(ws_root), include_decided=True)
    with DecisionStore.open(ws_root) as store:
        store.set_items(q.to_dict(orient="records"))
        return {name: store.reviewer_token(name) for name in reviewers}


def run_serve(ws: Any, *, reviewers: list[str], host: str = "127.0.0.1", port: int = 8765,
              page_size: int = 48, labelmap: str | None = None, per_item: int = 1,
              echo: Callable[[str], None] = print) -> None:
    """Serve until interrupted; then write the reviewed artifacts for the next build."""
    import uvicorn

    from weaklabel.review.reviewed import write_reviewed

    ws.require("post_labels.parquet")
    tokens = prepare(ws.root, reviewers)
    app = create_app(ws.root, page_size=page_size, labelmap=labelmap, per_item=per_item)
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise WeaklabelError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another "
                             "--port") from exc
    bound = sock.getsockname()[1]
    shown = host if host not in ("0.0.0.0", "::") else socket.gethostname()
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach this machine and holds a link "
                    "can review", host)
    for name in reviewers:
        echo(f"{name}: http://{shown}:{bound}/r/{tokens[name]}/")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        app.state.store.close()
        res = write_reviewed(ws.root)
        echo(f"review stopped: {res.decisions} decisions; reviewed {res.posts} posts, "
             f"{res.images} image verdicts → {ws.root}/reviewed_labels.parquet")
