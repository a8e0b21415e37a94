"""The review server over HTTP: tokens, isolation between reviewers, no path from a
request reaching the disk, idempotent decisions, nothing acknowledged lost on kill -9."""

from __future__ import annotations

import http.client
import json
import signal
import sqlite3
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from weaklabel.review.store import DECISIONS_DB


def call(url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw, code, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        raw, code, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
    return code, json.loads(raw) if "json" in ctype else raw


def test_tokens_paths_and_isolation(served) -> None:  # type: ignore[no-untyped-def]
    ana, ben = served.links["ana"], served.links["ben"]
    wrong = ana.replace("/r/", "/r/x")
    for rest in ("", "api/state", "api/page?label=lips", "img/2"):
        assert call(wrong + rest)[0] == 403, rest
    with_image = next(it["id"] for it in call(ana + "api/page?label=lips")[1]["items"]
                      if it["has_image"])
    code, img = call(ana + f"img/{with_image}")
    assert code == 200 and img[:3] == b"\xff\xd8\xff"  # a JPEG thumbnail
    base = ana.split("/r/")[0]
    for evil in ("img/../../../../etc/passwd", "img/..%2F..%2F..%2Fetc%2Fpasswd",
                 "img/%2Fetc%2Fpasswd", "img/99999", "img/-1", "../../inventory.sqlite",
                 "static/..%2f..%2finventory.sqlite"):
        assert call(ana + evil)[0] == 404, evil
    assert call(base + "/etc/passwd")[0] == 404
    assert call(base + "/")[0] == 404
    code, page = call(ana + "api/page?label=lips")
    first = page["items"][0]["id"]
    code, res = call(ana + "api/decide",
                     {"decisions": [{"id": "a-1", "item": first, "action": "reject"}]})
    assert code == 200 and res["acked"][0]["new"] is True
    code, res = call(ana + "api/decide",  # a retry: acknowledged, not doubled
                     {"decisions": [{"id": "a-1", "item": first, "action": "reject"}]})
    assert code == 200 and res["acked"][0]["new"] is False
    # ben sees none of ana's decisions, and can neither undo nor overwrite them
    code, state = call(ben + "api/state")
    assert state["reviewer"] == "ben"
    assert {lab["id"]: lab["done"] for lab in state["labels"]} == {"lips": 1, "nails": 0}
    bens = call(ben + "api/page?label=lips")[1]["items"]  # ana holds the lips page
    assert first not in [it["id"] for it in bens]
    assert all(it["decision"] is None for it in call(ben + "api/page?label=nails")[1]["items"])
    code, res = call(ben + "api/decide",
                     {"decisions": [{"id": "b-1", "action": "undo", "undoes": "a-1"}]})
    assert code == 422 and "no decision 'a-1' of ben" in res["errors"][0]["error"]
    code, res = call(ben + "api/decide",
                     {"decisions": [{"id": "a-1", "item": first, "action": "reject"}]})
    assert code == 422 and "already used" in res["errors"][0]["error"]
    code, res = call(ben + "api/decide", {"decisions": [{"id": "b-2", "action": "undo"}]})
    assert code == 422 and "nothing to undo" in res["errors"][0]["error"]
    assert call(ana + "api/page?label=lips")[1]["items"][0]["decision"]["action"] == "reject"
    assert call(ana + "api/decide", {"nonsense": 1})[0] == 400
    db = sqlite3.connect(f"file:{served.ws / DECISIONS_DB}?mode=ro", uri=True)
    assert db.execute("SELECT reviewer, action FROM decisions").fetchall() == [("ana", "reject")]


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_decision(serve) -> None:  # type: ignore[no-untyped-def]
    s = serve("w0,w1,w2,w3")
    items = [it["id"] for lab in ("lips", "nails")
             for it in call(s.links["w0"] + "api/page?label=" + lab)[1]["items"]]
    acked: dict[str, set[str]] = {}
    sent: dict[str, list[dict[str, Any]]] = {}

    def reviewer(name: str) -> None:
        acked[name], sent[name] = set(), []
        for n in range(400):  # bounded: the kill comes long before the end
            d = {"id": f"{name}-{n}", "item": items[n % len(items)],
                 "action": "reject" if n % 2 else "accept"}
            sent[name].append(d)
            try:
                code, res = call(s.links[name] + "api/decide", {"decisions": [d]})
            except (OSError, http.client.HTTPException):
                return  # the server is gone
            if code == 200:
                acked[name].update(a["id"] for a in res["acked"])

    threads = [threading.Thread(target=reviewer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    import time

    while sum(len(a) for a in acked.values()) < 150:
        time.sleep(0.01)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(timeout=10)
    for t in threads:
        t.join(timeout=60)
    db = sqlite3.connect(f"file:{s.ws / DECISIONS_DB}?mode=ro", uri=True)
    stored = {r[0] for r in db.execute("SELECT id FROM decisions")}
    db.close()
    every_ack = set().union(*acked.values())
    assert len(every_ack) >= 150
    assert every_ack <= stored  # nothing acknowledged is lost
    # a restarted server takes the retries of everything sent: nothing doubles
    s2 = serve("w0,w1,w2,w3")
    assert s2.links["w0"] == s.links["w0"].replace(
        s.links["w0"].split("/r/")[0], s2.links["w0"].split("/r/")[0])  # same tokens
    for name, ds in sent.items():
        for start in range(0, len(ds), 100):
            code, res = call(s2.links[name] + "api/decide", {"decisions": ds[start:start + 100]})
            assert code == 200, res
    db = sqlite3.connect(f"file:{s.ws / DECISIONS_DB}?mode=ro", uri=True)
    n, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM decisions").fetchone()
    assert n == distinct == sum(len(ds) for ds in sent.values())


def test_assigner_splits_the_queue_and_sends_disagreements_to_a_third() -> None:
    from weaklabel.review.server import Assigner
    from weaklabel.review.store import Decision

    items = [{"id": i, "post_id": f"p{i}", "image": "", "label": "lips"} for i in range(10)]
    votes: dict[tuple[str, str], dict[str, Decision]] = {}

    def decide(who: str, i: int, action: str, seq: int) -> None:
        votes.setdefault((f"p{i}", ""), {})[who] = Decision(
            f"{who}{i}", who, f"p{i}", "", "lips", action, "lips" if action == "accept" else "",
            seq=seq)

    one = Assigner({"lips": items}, per_item=1, page_size=4)
    a = [it["id"] for it in one.page("ana", "lips", votes)]
    b = [it["id"] for it in one.page("ben", "lips", votes)]
    assert a == [0, 1, 2, 3] and b == [4, 5, 6, 7]  # held pages are not handed out twice
    assert [it["id"] for it in one.page("ana", "lips", votes)] == a  # a reload: same page
    for seq, i in enumerate(a):
        decide("ana", i, "accept", seq)
    assert [it["id"] for it in one.page("ana", "lips", votes)] == [8, 9]
    assert one.done("lips", votes, "ben") == 4

    two = Assigner({"lips": items[:2]}, per_item=2, page_size=4)
    votes.clear()
    decide("ana", 0, "accept", 1)
    decide("ben", 0, "reject", 2)   # p0: ana and ben disagree → a third reviewer
    decide("ana", 1, "accept", 3)
    decide("ben", 1, "accept", 4)   # p1: they agree → done
    assert [it["id"] for it in two.page("cy", "lips", votes)] == [0]
    assert two.done("lips", votes, "cy") == 1
    everyone = Assigner({"lips": items[:2]}, per_item=0, page_size=4)
    assert [it["id"] for it in everyone.page("dee", "lips", votes)] == [0, 1]
    assert everyone.done("lips", votes, "ana") == 2 and everyone.done("lips", votes, "dee") == 0


def _post(url: str, data: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_only_a_json_post_of_its_own_page_is_taken(served) -> None:  # type: ignore[no-untyped-def]
    ana = served.links["ana"]
    first = call(ana + "api/page?label=lips")[1]["items"][0]["id"]
    body = json.dumps({"decisions": [{"id": "x-1", "item": first, "action": "reject"}]})
    # a form or text/plain POST (what another site's page can send without asking)
    assert _post(ana + "api/decide", body.encode(), {"Content-Type": "text/plain"}) == 415
    host = ana.split("://", 1)[1].split("/", 1)[0]
    assert _post(ana + "api/decide", body.encode(), {
        "Content-Type": "application/json", "Origin": "http://evil.example:9999"}) == 403
    huge = json.dumps({"decisions": [], "pad": "x" * (2 << 20)}).encode()
    assert _post(ana + "api/decide", huge, {"Content-Type": "application/json"}) == 413
    # not a whole number: one error line, not a server error
    code, res = call(ana + "api/decide", {"decisions": [
        {"id": "x-2", "item": 1e400, "action": "reject"}]})  # json.dumps writes Infinity
    assert code == 422 and "not an item id" in res["errors"][0]["error"]
    code, res = call(ana + "api/decide", {"decisions": [
        {"id": "x-3", "item": first, "action": "relabel", "label": "zzz"}]})
    assert code == 422 and res["errors"][0]["error"] == "unknown label 'zzz'"
    assert _post(ana + "api/decide", body.encode(), {
        "Content-Type": "application/json", "Origin": f"http://{host}"}) == 200
    db = sqlite3.connect(f"file:{served.ws / DECISIONS_DB}?mode=ro", uri=True)
    assert db.execute("SELECT id FROM decisions").fetchall() == [("x-1",)]
    assert "frame-ancestors 'none'" in urllib.request.urlopen(ana).headers[
        "Content-Security-Policy"]


def test_an_item_keeps_its_id_across_queues_and_a_stale_page_is_refused(serve) -> None:  # type: ignore[no-untyped-def]
    from weaklabel.review.store import item_id

    s = serve()
    ana = s.links["ana"]
    items = call(ana + "api/page?label=lips")[1]["items"]
    assert all(it["id"] == item_id(it["post_id"], it["image"]) for it in items)
    a, b = items[0], items[1]
    # a page that thinks item a is another post (an older queue): refused, not recorded
    code, res = call(ana + "api/decide", {"decisions": [
        {"id": "s-1", "item": a["id"], "post_id": b["post_id"], "image": b["image"],
         "action": "reject"}]})
    assert code == 422 and "reload the page" in res["errors"][0]["error"]
    code, res = call(ana + "api/decide", {"decisions": [
        {"id": "s-2", "item": a["id"], "post_id": a["post_id"], "image": a["image"],
         "action": "reject"}]})
    assert code == 200
