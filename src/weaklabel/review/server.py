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

import inspect
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
MAX_BODY = 1 << 20
"""Most bytes one POST may carry (200 decisions take about 40 KB)."""


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


HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'none'; img-src 'self'; "
           "style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; "
           "frame-ancestors 'none'"}
"""Sent with every response: nothing cached or sniffed, no script from elsewhere, never
inside another site's frame."""


class Review:
    """One workspace's review state behind the app: the store, the queue's items by id
    and by label (in queue order), the label names and order, and who gets which page."""

    def __init__(self, ws_root: Path, *, page_size: int, labelmap: str | None,
                 per_item: int) -> None:
        self.store = DecisionStore.open(ws_root)
        self.images = ImageSource(ws_root)
        self.page_size = page_size
        self.counts = self.store.label_counts()
        self.names: dict[str, str] = {}
        self.order = sorted(self.counts)
        if labelmap and Path(labelmap).is_file():
            from weaklabel.labels.labelmap import load_labelmap

            lm = load_labelmap(labelmap)
            self.names = {lab.id: lab.name for lab in lm.labels}
            self.order = lm.ids + [lab for lab in self.order if lab not in lm.ids]
        self.by_id = {it["id"]: it for it in self.store.items()}
        self.by_label: dict[str, list[dict[str, Any]]] = {}
        for it in sorted(self.by_id.values(), key=lambda r: r["rank"]):
            self.by_label.setdefault(it["label"], []).append(it)
        self.assigner = Assigner(self.by_label, per_item=per_item, page_size=page_size)

    def reviewer(self, token: str) -> str | None:
        return self.store.reviewer_of(token)

    def votes(self) -> dict[tuple[str, str], dict[str, Decision]]:
        """Standing decisions per item, by reviewer."""
        out: dict[tuple[str, str], dict[str, Decision]] = {}
        for (r, p, i), d in effective(self.store.decisions()).items():
            out.setdefault((p, i), {})[r] = d
        return out

    def progress(self, reviewer: str, v: Mapping[tuple[str, str], Mapping[str, Decision]]
                 ) -> list[dict[str, Any]]:
        return [{"id": lab, "name": self.names.get(lab, lab),
                 "total": len(self.by_label.get(lab, [])),
                 "done": self.assigner.done(lab, v, reviewer)}
                for lab in self.order if lab in self.by_label]

    def state(self, reviewer: str) -> dict[str, Any]:
        return {"reviewer": reviewer, "labels": self.progress(reviewer, self.votes()),
                "choices": [{"id": lab, "name": self.names.get(lab, lab)}
                            for lab in self.order],
                "page_size": self.page_size}

    def page(self, reviewer: str, label: str) -> dict[str, Any]:
        """The reviewer's current page of ``label``, with their decisions on it."""
        v = self.votes()
        decided = {k: mine[reviewer] for k, mine in v.items() if reviewer in mine}
        out = []
        for it in self.assigner.page(reviewer, label, v):
            d = decided.get((it["post_id"], it["image"]))
            out.append({"id": it["id"], "post_id": it["post_id"], "label": it["label"],
                        "confidence": it["confidence"], "why": it["why"],
                        "caption": it["caption"][:300], "evidence": it["evidence"][:200],
                        "has_image": bool(it["image"]) and self.images.available(it["image"]),
                        "image": it["image"],
                        "decision": None if d is None else
                        {"id": d.id, "action": d.action, "label": d.label}})
        return {"label": label, "items": out, "labels": self.progress(reviewer, v)}

    def decide(self, reviewer: str, rows: list[Any]) -> tuple[dict[str, Any], int]:
        """Record each decision in its own transaction; the body and status to send."""
        acked, errors = [], []
        for r in rows:
            try:
                stored, new = self.store.record(self.to_decision(reviewer, r))
                acked.append({"id": stored.id, "new": new, "seq": stored.seq})
            except (WeaklabelError, KeyError, TypeError, ValueError, OverflowError) as exc:
                rid = r.get("id") if isinstance(r, dict) else None
                msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                errors.append({"id": rid, "error": str(msg)})
        return {"acked": acked, "errors": errors}, 422 if errors else 200

    def to_decision(self, reviewer: str, r: dict[str, Any]) -> Decision:
        """A posted row as a decision of ``reviewer`` (an undo names what it undoes)."""
        action, did = str(r["action"]), str(r["id"])
        if action == "undo":
            return Decision(did, reviewer, "", action="undo",
                            undoes=str(r.get("undoes") or self._last(reviewer, did)))
        item = r["item"]
        if not isinstance(item, int) or isinstance(item, bool):
            raise WeaklabelError(f"item {item!r} is not an item id (a whole number)")
        it = self.by_id.get(item)
        if it is None:
            raise WeaklabelError(f"no item {item!r}")
        for key in ("post_id", "image"):  # a page of an older queue: the same item?
            if key in r and str(r[key]) != it[key]:
                raise WeaklabelError(f"item {item!r} is no longer {key} {r[key]!r}; reload "
                                     "the page")
        label = str(r.get("label", "")) if action == "relabel" else \
            (it["label"] if action == "accept" else "")
        if action == "relabel" and label and label not in self.counts and \
                label not in self.names:
            raise WeaklabelError(f"unknown label {label!r}")
        return Decision(did, reviewer, it["post_id"], it["image"], it["label"], action, label,
                        slice=it["why"] == RANDOM_WHY)

    def _last(self, reviewer: str, did: str) -> str:
        """What "undo my last" undoes: the latest standing decision (a retried undo: the
        one it undid the first time)."""
        mine = self.store.decisions(reviewer)
        retry = next((x for x in mine if x.id == did), None)
        if retry is not None:
            return str(retry.undoes)
        live = sorted(effective(mine).values(), key=lambda x: x.seq or 0)
        if not live:
            raise WeaklabelError("nothing to undo")
        return live[-1].id

    def thumbnail(self, item: int) -> bytes | None:
        it = self.by_id.get(item)
        return self.images.thumbnail(it["image"]) if it else None


def create_app(ws_root: Path, *, page_size: int = 48, labelmap: str | None = None,
               per_item: int = 1) -> Any:
    """The Starlette application of one workspace's review (see :class:`Review`)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from weaklabel.review.page import PAGE_HTML

    rv = Review(ws_root, page_size=page_size, labelmap=labelmap, per_item=per_item)

    def guarded(handler: Callable[[Request, str], Any]) -> Callable[[Request], Any]:
        """403 for an unknown token, else ``handler(request, reviewer)``; a plain
        function stays one, so Starlette runs it in its thread pool, off the loop."""
        def forbidden(request: Request) -> tuple[str | None, Response | None]:
            reviewer = rv.reviewer(str(request.path_params.get("token", "")))
            return reviewer, None if reviewer is not None else Response(
                "unknown or revoked invite link\n", status_code=403,
                media_type="text/plain", headers=HEADERS)

        if inspect.iscoroutinefunction(handler):
            async def endpoint_async(request: Request) -> Response:
                reviewer, denied = forbidden(request)
                return denied or await handler(request, reviewer or "")
            return endpoint_async

        def endpoint(request: Request) -> Response:
            reviewer, denied = forbidden(request)
            return denied or handler(request, reviewer or "")
        return endpoint

    async def decide(request: Request, reviewer: str) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":  # a form or text/plain POST from another site
            return JSONResponse({"error": "send application/json"}, 415, headers=HEADERS)
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
            return JSONResponse({"error": "a page of another site"}, 403, headers=HEADERS)
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return JSONResponse({"error": f"at most {MAX_BODY} bytes a request"}, 413,
                                    headers=HEADERS)
        try:
            rows = json.loads(raw)["decisions"]
            assert isinstance(rows, list) and len(rows) <= MAX_BATCH
        except Exception:
            return JSONResponse({"error": f"send {{\"decisions\": [...]}} with at most "
                                          f"{MAX_BATCH} decisions"}, 400, headers=HEADERS)
        body, status = await run_in_threadpool(rv.decide, reviewer, rows)
        return JSONResponse(body, status, headers=HEADERS)

    def image(request: Request, reviewer: str) -> Response:
        data = rv.thumbnail(int(request.path_params["item"]))
        if data is None:
            return Response("no such image\n", 404, media_type="text/plain", headers=HEADERS)
        return Response(data, media_type="image/jpeg",
                        headers={**HEADERS, "Cache-Control": "private, max-age=3600"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return Response("not found\n", 404, media_type="text/plain", headers=HEADERS)

    routes = [
        Route("/r/{token}/", guarded(lambda r, who: HTMLResponse(PAGE_HTML, headers=HEADERS))),
        Route("/r/{token}/api/state",
              guarded(lambda r, who: JSONResponse(rv.state(who), headers=HEADERS))),
        Route("/r/{token}/api/page", guarded(lambda r, who: JSONResponse(
            rv.page(who, r.query_params.get("label", "")), headers=HEADERS))),
        Route("/r/{token}/api/decide", guarded(decide), methods=["POST"]),
        Route("/r/{token}/img/{item:int}", guarded(image)),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found})
    app.state.store = rv.store
    return app


def prepare(ws_root: Path, reviewers: list[str], *, order: str = "default") -> dict[str, str]:
    """Refresh the queue (in ``order``, ``review.queue``) in the store and make (or
    reuse) each reviewer's token."""
    from weaklabel.review.triage import write_queue
    from weaklabel.workspace import Workspace

    q = write_queue(Workspace(ws_root), include_decided=True, order=order)
    with DecisionStore.open(ws_root) as store:
        store.set_items(q.to_dict(orient="records"))
        return {name: store.reviewer_token(name) for name in reviewers}


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket, or one line saying whether ``--host`` or ``--port`` is to blame.

    Raises:
        WeaklabelError: a name that does not resolve or an address not of this machine
            (fix --host), a port in use or below 1024 without root (fix --port).
    """
    import errno

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return sock
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            fix = ("--host must be an address of this machine: 127.0.0.1 (this machine "
                   "only) or 0.0.0.0 (every interface)")
        elif exc.errno == errno.EACCES and 0 < port < 1024:
            fix = "ports below 1024 need root: pick --port 1024 or above (0: any free one)"
        else:
            fix = "pick another --port (0: any free one)"
        raise WeaklabelError(f"cannot listen on {host}:{port} ({why}); {fix}") from exc


def serve(ws: Any, *, reviewers: list[str], host: str = "127.0.0.1", port: int = 8765,
              page_size: int = 48, labelmap: str | None = None, per_item: int = 1,
              order: str = "default", echo: Callable[[str], None] = print) -> None:
    """Serve until interrupted; then write the reviewed artifacts for the next build."""
    import uvicorn

    from weaklabel.review.reviewed import write_reviewed

    ws.require("post_labels.parquet")
    tokens = prepare(ws.root, reviewers, order=order)
    app = create_app(ws.root, page_size=page_size, labelmap=labelmap, per_item=per_item)
    host = host.strip("[]")  # "[::1]" as a URL writes it
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    shown = (socket.gethostname() if host in ("0.0.0.0", "::")
             else f"[{host}]" if ":" in host else host)
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
