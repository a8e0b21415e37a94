"""The decisions journal: one transaction per decision, idempotent ids, undo as a row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel.errors import WeaklabelError
from weaklabel.review.store import DECISIONS_DB, Decision, DecisionStore, effective


def test_record_is_idempotent_on_the_client_id(tmp_path: Path) -> None:
    with DecisionStore.open(tmp_path) as s:
        d = Decision("d1", "ana", "p1", "a.jpg", "lips", "reject")
        first, new1 = s.record(d)
        again, new2 = s.record(d)
        assert (new1, new2) == (True, False)
        assert again.seq == first.seq
        assert s.count() == 1
        with pytest.raises(WeaklabelError, match="already used for another decision"):
            s.record(Decision("d1", "ana", "p1", "a.jpg", "lips", "accept", "lips"))
    db = sqlite3.connect(tmp_path / DECISIONS_DB)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_import_is_checked_whole_then_recorded_in_batches(tmp_path: Path) -> None:
    # one transaction per row made 20,000 imported rows take 78 s and a failing row
    # leave the rows before it recorded
    many = [Decision(f"i{n}", "ana", f"p{n}", "", "lips", "accept", "lips")
            for n in range(2000)]
    with DecisionStore.open(tmp_path) as s:
        # a repeated row is already there, also across batches
        assert s.record_many([*many, many[0]], batch=300) == (2000, 1)
        assert s.record_many(many) == (0, 2000)
        clash = Decision("new", "ana", "q1", "", "lips", "accept", "lips")
        with pytest.raises(WeaklabelError, match="'i5' is already used for another"):
            s.record_many([clash, Decision("i5", "ben", "p5", "", "lips", "reject")])
        assert s.count() == 2000  # the good row before the clash was rolled back
        assert [d.seq for d in s.decisions()] == list(range(1, 2001))


def test_undo_is_a_new_row_and_only_the_reviewers_own(tmp_path: Path) -> None:
    with DecisionStore.open(tmp_path) as s:
        s.record(Decision("a1", "ana", "p1", "", "lips", "accept", "lips"))
        s.record(Decision("a2", "ana", "p1", "", "lips", "relabel", "nails"))
        with pytest.raises(WeaklabelError, match="no decision 'a2' of ben"):
            s.record(Decision("b1", "ben", "", action="undo", undoes="a2"))
        s.record(Decision("a3", "ana", "", action="undo", undoes="a2"))
        rows = s.decisions()
        assert [d.action for d in rows] == ["accept", "relabel", "undo"]
        assert rows[2].post_id == "p1"  # the undo row names what it took back
        standing = effective(rows)
        assert standing[("ana", "p1", "")].id == "a1"  # the one before stands again


def test_a_reopened_store_keeps_tokens_and_decisions(tmp_path: Path) -> None:
    with DecisionStore.open(tmp_path) as s:
        tok = s.reviewer_token("ana")
        s.record(Decision("a1", "ana", "p1", "", "lips", "accept", "lips"))
    with DecisionStore.open(tmp_path) as s:
        assert s.reviewer_token("ana") == tok
        assert s.reviewer_of(tok) == "ana"
        assert s.reviewer_of(tok + "x") is None
        assert s.reviewer_token("ben") != tok
        assert [d.id for d in s.decisions("ana")] == ["a1"]


def test_malformed_decisions_are_refused(tmp_path: Path) -> None:
    with DecisionStore.open(tmp_path) as s:
        for d, msg in [(Decision("", "ana", "p1"), "decision id"),
                       (Decision("x", "ana", "p1", action="maybe"), "unknown action"),
                       (Decision("x", "ana", "", action="undo"), "must name"),
                       (Decision("x", "", "p1"), "needs a reviewer")]:
            with pytest.raises(WeaklabelError, match=msg):
                s.record(d)
        assert s.count() == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(["accept", "undo"])),
                max_size=12))
def test_effective_never_keeps_an_undone_decision(tmp_path_factory, ops) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("s")
    with DecisionStore.open(root) as s:
        done: list[str] = []
        for i, (post, op) in enumerate(ops):
            if op == "undo" and done:
                s.record(Decision(f"u{i}", "ana", "", action="undo", undoes=done.pop()))
            elif op == "accept":
                s.record(Decision(f"d{i}", "ana", post, "", "lips", "accept", "lips"))
                done.append(f"d{i}")
        standing = {d.id for d in effective(s.decisions()).values()}
        assert standing <= set(done)
        # per post the standing decision is the latest not undone
        for post in ("p1", "p2"):
            live = [d for d in done if any(d == f"d{i}" and p == post
                                           for i, (p, _) in enumerate(ops))]
            got = effective(s.decisions()).get(("ana", post, ""))
            assert (got.id if got else None) == (live[-1] if live else None)
