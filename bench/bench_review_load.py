"""Load test of ``weaklabel review serve``: 20 simulated reviewers × 500 decisions.

A synthetic workspace (``--posts`` text posts, two labels) is served on 127.0.0.1 by the
real command in a subprocess. Each reviewer is a thread with its own keep-alive
connection that sends its decisions one per request, as clicks arrive, and re-sends a
decision with the same id until it is acknowledged. Two phases:

1. **steady**: every reviewer sends all its decisions; p50/p99/max latency per request.
2. **kill -9**: the same again on a fresh store, the server is killed with SIGKILL once
   half the decisions are acknowledged, restarted, and the reviewers carry on (re-sending
   what was not acknowledged).

After each phase the SQLite journal is checked: every decision exactly once (zero lost,
zero doubled), every acknowledged one present.

Usage: python bench/bench_review_load.py [--reviewers 20] [--decisions 500]
Writes bench/out/review_load.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent


def make_workspace(ws: Path, posts: int) -> None:
    import pandas as pd

    from weaklabel.contracts import POST_LABELS
    from weaklabel.workspace import write_parquet

    if ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    ids = [f"p{i:06d}" for i in range(posts)]
    labels = ["a" if i % 3 else "b" for i in range(posts)]
    write_parquet(pd.DataFrame({
        "post_id": ids, "label": labels, "confidence": [(i % 100) / 100 for i in range(posts)],
        "source": "knn", "evidence": "", "top_label": labels}), ws / "post_labels.parquet",
        POST_LABELS)


def start(ws: Path, names: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "weaklabel.cli", "review", "serve", "-w", str(ws), "-q",
         "--reviewers", ",".join(names), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    links: dict[str, str] = {}
    assert proc.stdout is not None
    while len(links) < len(names):
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the server did not start")
        name, _, url = line.strip().partition(": ")
        links[name] = url
    for _ in range(400):
        try:
            c = http.client.HTTPConnection(urlsplit(links[names[0]]).netloc, timeout=5)
            c.request("GET", urlsplit(links[names[0]]).path + "api/state")
            c.getresponse().read()
            c.close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, links


class Reviewer(threading.Thread):
    """Sends ``n`` decisions one request each, re-sending until acknowledged."""

    def __init__(self, name: str, items: list[int], n: int, links: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.name_ = name
        self.items = items
        self.n = n
        self.links = links
        self.next = 0
        self.acked: set[str] = set()
        self.latency: list[float] = []
        self.errors = 0
        self.stop = False
        self.conn: http.client.HTTPConnection | None = None

    def _post(self, body: bytes) -> dict[str, Any]:
        url = urlsplit(self.links[self.name_])
        if self.conn is None:
            self.conn = http.client.HTTPConnection(url.netloc, timeout=10)
        self.conn.request("POST", url.path + "api/decide", body,
                          {"Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise OSError(f"HTTP {r.status}: {data[:200]!r}")
        return json.loads(data)

    def run(self) -> None:
        while self.next < self.n and not self.stop:
            i = self.next
            d = {"id": f"{self.name_}-{i}", "item": self.items[(i * 7) % len(self.items)],
                 "action": ("accept", "reject", "relabel")[i % 3], "label": "b"}
            body = json.dumps({"decisions": [d]}).encode()
            for attempt in range(200):  # bounded retries: the server may be restarting
                t = time.perf_counter()
                try:
                    res = self._post(body)
                except (OSError, http.client.HTTPException):
                    self.errors += 1
                    if self.conn is not None:
                        self.conn.close()
                    self.conn = None
                    time.sleep(min(1.0, 0.02 * (attempt + 1)))
                    continue
                self.latency.append(time.perf_counter() - t)
                self.acked.update(a["id"] for a in res["acked"])
                break
            else:
                raise SystemExit(f"{self.name_}: decision {i} never acknowledged")
            self.next += 1


def check(ws: Path, reviewers: list[Reviewer]) -> dict[str, int]:
    db = sqlite3.connect(f"file:{ws / 'review/decisions.sqlite'}?mode=ro", uri=True)
    ids = [r[0] for r in db.execute("SELECT id FROM decisions")]
    db.close()
    stored = set(ids)
    sent = {f"{r.name_}-{i}" for r in reviewers for i in range(r.n)}
    acked = set().union(*(r.acked for r in reviewers))
    return {"sent": len(sent), "stored": len(ids), "doubled": len(ids) - len(stored),
            "lost": len(sent - stored), "acked_lost": len(acked - stored),
            "unexpected": len(stored - sent)}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(1000 * xs[min(len(xs) - 1, int(q * len(xs)))], 2) if xs else 0.0


def phase(ws: Path, names: list[str], n: int, *, kill: bool) -> dict[str, Any]:
    db = ws / "review"
    if db.exists():
        shutil.rmtree(db)
    proc, links = start(ws, names)
    from weaklabel.review.store import DecisionStore

    with DecisionStore.open(ws) as s:
        items = [it["id"] for it in s.items()]
    rs = [Reviewer(name, items, n, links) for name in names]
    t0 = time.perf_counter()
    for r in rs:
        r.start()
    restarts = 0
    if kill:
        while sum(len(r.acked) for r in rs) < len(rs) * n // 2:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        acked_at_kill = sum(len(r.acked) for r in rs)
        proc, new_links = start(ws, names)  # same tokens, a new port
        for r in rs:
            r.links = new_links
        restarts = 1
    for r in rs:
        r.join()
    elapsed = time.perf_counter() - t0
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    lat = [x for r in rs for x in r.latency]
    out = {"reviewers": len(rs), "decisions_each": n, "seconds": round(elapsed, 1),
           "decisions_per_s": round(len(rs) * n / elapsed, 1),
           "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "max_ms": pct(lat, 1.0),
           "retries": sum(r.errors for r in rs), "restarts": restarts, **check(ws, rs)}
    if kill:
        out["acked_before_kill"] = acked_at_kill
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reviewers", type=int, default=20)
    ap.add_argument("--decisions", type=int, default=500)
    ap.add_argument("--posts", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args(argv)
    ws = args.out / "review_load_ws"
    make_workspace(ws, args.posts)
    names = [f"r{i:02d}" for i in range(args.reviewers)]
    steady = phase(ws, names, args.decisions, kill=False)
    killed = phase(ws, names, args.decisions, kill=True)
    report = {"steady": steady, "kill_9": killed}
    (args.out / "review_load.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    for name, r in report.items():
        print(f"{name:<7} {r['reviewers']}×{r['decisions_each']} decisions in {r['seconds']}s "
              f"({r['decisions_per_s']}/s): p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
              f"max {r['max_ms']} ms; stored {r['stored']}/{r['sent']}, lost {r['lost']}, "
              f"doubled {r['doubled']}, acknowledged-then-lost {r['acked_lost']}, "
              f"retries {r['retries']}")
    ok = all(r["lost"] == r["doubled"] == r["acked_lost"] == r["unexpected"] == 0
             for r in report.values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
