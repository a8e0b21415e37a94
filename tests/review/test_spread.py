"""A review spreads to the posts of the same text (``propagate.reviews_spread: tokens``),
and the queue shows one post of such a group, weighed by how many posts it settles.

Real text: half the bundled chatbot questions (``tests/data/chatbot_sample.csv``), a few of
them posted again verbatim (as 14 % of the full chatbot corpus is), tokenised by the regex
baseline, embedded, clustered and labelled by the real stages in a workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from weaklabel.review.reviewed import same_text_groups, spread_reviews
from weaklabel.review.triage import build_queue


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, chatbot_workspace) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A propagated workspace of every other question of the sample plus copies: 3 more
    of row 10's question, 2 more of row 1000's and 1 more of row 1500's."""
    copies = [(10, 3), (1000, 2), (1500, 1)]
    fx = chatbot_workspace(tmp_path_factory.mktemp("spread"), copies)
    ws, cfg, rows = fx["ws"], fx["cfg"], fx["rows"]
    tokens = pd.read_parquet(ws.path("tokens.parquet"))
    groups = same_text_groups(tokens["post_id"].tolist(), [list(t) for t in tokens["tokens"]])
    return {"ws": ws, "cfg": cfg, "groups": groups, "rows": rows,
            "labels": pd.read_parquet(ws.path("post_labels.parquet")),
            "copied": [rows.iloc[r]["id"] for r, _ in copies]}


def test_same_text_groups_hold_exactly_the_posts_of_one_token_list(built) -> None:  # type: ignore[no-untyped-def]
    groups, ws = built["groups"], built["ws"]
    tokens = pd.read_parquet(ws.path("tokens.parquet"))
    toks = {p: tuple(t) for p, t in zip(tokens["post_id"], tokens["tokens"], strict=True)}
    members: dict[str, list[str]] = {}
    for p, key in groups.items():
        members.setdefault(key, []).append(p)
    assert all(len(m) > 1 and len({toks[p] for p in m}) == 1 and min(m) == k
               for k, m in members.items())
    # every other post's token list is its own (or empty)
    alone = [toks[p] for p in toks if p not in groups and toks[p]]
    assert len(alone) == len(set(alone))
    assert not set(alone) & {toks[p] for p in groups}
    sizes = sorted((len(members[groups[p]]) for p in built["copied"]), reverse=True)
    assert sizes[0] >= 4 and sizes[1] >= 3 and sizes[2] >= 2


def _repropagate(built: dict[str, Any], tmp: Path, reviewed: dict[str, str],
                 spread: str, over: dict[str, Any] | None = None) -> pd.DataFrame:
    """propagate again in a copy of the workspace with these reviewed labels."""
    import shutil

    from weaklabel.config import with_overrides
    from weaklabel.labels.propagate import run_propagate
    from weaklabel.workspace import Workspace

    ws = tmp / f"ws-{spread}"
    shutil.copytree(built["ws"].root, ws)
    shown = dict(zip(built["labels"]["post_id"], built["labels"]["label"], strict=True))
    pd.DataFrame({"post_id": list(reviewed), "label": list(reviewed.values()),
                  "shown": [shown[p] for p in reviewed]}).sort_values("post_id").to_parquet(
        ws / "reviewed_labels.parquet", index=False)
    cfg = with_overrides(built["cfg"], {"workspace": str(ws),
                                        "labelmap": str(ws / "labelmap.draft.yaml"),
                                        "propagate.reviews_spread": spread, **(over or {})})
    run_propagate(Workspace(ws), cfg, force=True, progress=False)
    return pd.read_parquet(ws / "post_labels.parquet")


def test_a_correction_reaches_the_same_text_and_no_other_post(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    groups, labels = built["groups"], built["labels"]
    ids = sorted({lab for lab in labels["label"] if lab})
    shown = dict(zip(labels["post_id"], labels["label"], strict=True))
    members: dict[str, list[str]] = {}
    for p, key in sorted(groups.items()):
        members.setdefault(key, []).append(p)
    big, mid, pair = (members[groups[p]] for p in built["copied"])

    def other(p: str) -> str:  # a label the post was not given: a correction
        return next(lab for lab in ids if lab != shown[p])

    # big group: two reviews say one label, one another (majority spreads to the rest);
    # mid group: one correction; the pair: two reviews disagree (a tie spreads nothing);
    # a singleton: corrected on its own
    lone = next(p for p in labels["post_id"] if p not in groups)
    a = other(big[0])
    b = next(lab for lab in ids if lab != a)
    reviewed = {big[0]: a, big[1]: a, big[2]: b, mid[0]: other(mid[0]),
                pair[0]: ids[0], pair[1]: ids[1], lone: other(lone)}
    on = _repropagate(built, tmp_path, reviewed, "tokens")
    off = _repropagate(built, tmp_path, reviewed, "none")
    got = {name: dict(zip(df["post_id"], zip(df["label"], df["source"], df["evidence"],
                                             strict=True), strict=True))
           for name, df in (("on", on), ("off", off))}
    # reviewed posts keep their own label, whatever their group says
    for name in got:
        assert all(got[name][p][:2] == (lab, "reviewed") for p, lab in reviewed.items())
    spread_to = {p: a for p in big[3:]} | {p: reviewed[mid[0]] for p in mid[1:]}
    assert len(spread_to) >= 3
    for p, lab in spread_to.items():
        assert got["on"][p][:2] == (lab, "reviewed")
        assert got["on"][p][2].startswith(f"same text as reviewed {groups[p]}")
        assert got["off"][p][1] != "reviewed"  # without spreading: a label like any other
    # and nowhere else: every other post is labelled by the sources, with or without
    others = set(on["post_id"]) - set(reviewed) - set(spread_to)
    assert not any(got["on"][p][1] == "reviewed" for p in others)
    conf = dict(zip(on["post_id"], on["confidence"], strict=True))
    assert all(conf[p] == 1.0 for p in spread_to)  # as sure as the review itself


def test_no_reviews_spread_nothing(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert spread_reviews({}, built["groups"]) == {}
    lone = next(p for p in built["labels"]["post_id"] if p not in built["groups"])
    # a post outside every group spreads to nobody
    assert spread_reviews({lone: "x"}, built["groups"]) == {lone: "x"}


def test_queue_puts_a_large_uncertain_group_before_a_singleton_and_shows_it_once(built) -> None:  # type: ignore[no-untyped-def]
    labels, groups = built["labels"], built["groups"]
    big_key = groups[built["copied"][0]]
    big = sorted(p for p, k in groups.items() if k == big_key)
    # make the big group as uncertain as a chosen singleton: same label, votes and evidence
    lone = next(p for p, src in zip(labels["post_id"], labels["source"], strict=True)
                if p not in groups and src == "knn")
    row = labels.loc[labels["post_id"] == lone].iloc[0]
    same = labels.copy()
    for col in ("label", "confidence", "source", "evidence", "top_label",
                *[c for c in labels.columns if c.startswith("label_")]):
        same.loc[same["post_id"].isin(big), col] = row[col]
    plain = build_queue(same, random_rate=0.0)
    grouped = build_queue(same, random_rate=0.0, groups=groups)
    order = {name: q["post_id"].tolist() for name, q in (("plain", plain), ("grouped", grouped))}
    first_big = min(order["grouped"].index(p) for p in big)
    assert first_big < order["grouped"].index(lone)
    # one post of the group comes in order; the others wait at the end, after every
    # item queued in order
    rep = order["grouped"][first_big]
    assert "settles 4 posts of the same text" in grouped["why"].iloc[first_big]
    later = grouped["why"].str.contains("same text as ")
    assert later.sum() >= len(big) - 1 and later.tail(int(later.sum())).all()
    assert set(big) - {rep} <= set(grouped.loc[later, "post_id"])
    assert all(f"same text as {rep}" in w
               for w in grouped.loc[grouped["post_id"].isin(set(big) - {rep}), "why"])
    # the same items either way; without groups none waits
    assert sorted(order["plain"]) == sorted(order["grouped"])
    assert not plain["why"].str.contains("same text as ").any()


def test_queue_defers_the_group_of_a_decided_post(built) -> None:  # type: ignore[no-untyped-def]
    labels, groups = built["labels"], built["groups"]
    mid_key = groups[built["copied"][1]]
    mid = sorted(p for p, k in groups.items() if k == mid_key)
    q = build_queue(labels, random_rate=0.0, groups=groups, exclude={(mid[0], "")})
    assert mid[0] not in set(q["post_id"])
    later = q["why"].str.contains("same text as ")
    assert later.tail(int(later.sum())).all()
    rest = q.loc[q["post_id"].isin(mid[1:])]
    assert len(rest) == len(mid) - 1
    assert all(later[rest.index]) and all("same text as a decided post" in w for w in rest["why"])


def test_a_spread_correction_counts_once_in_the_keyword_audit(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # a same-text group of keyword seeds: one correction of its text, spread to the
    # group, is one piece of evidence on the seeding word (Beta 2:1 → 2/4, at the bar 0.5:
    # the word keeps seeding), not one per post it reached (2/5 would indict it)
    labels, groups = built["labels"], built["groups"]
    src = dict(zip(labels["post_id"], labels["source"], strict=True))
    ev = dict(zip(labels["post_id"], labels["evidence"], strict=True))
    members: dict[str, list[str]] = {}
    for p, key in sorted(groups.items()):
        members.setdefault(key, []).append(p)
    key = next(k for k, m in members.items() if all(src[p] == "seed" for p in m))
    why = ev[key]  # "label: word"
    label = why.split(":")[0]
    others = [p for p in labels["post_id"] if ev[p] == why and p not in members[key]]
    assert others  # the word seeds posts outside the group too
    ids = sorted({lab for lab in labels["label"] if lab})
    reviewed = {key: next(lab for lab in ids if lab != label)}
    out = _repropagate(built, tmp_path, reviewed, "tokens",
                       {"propagate.reviewed_keywords": 0.5})
    got = dict(zip(out["post_id"], zip(out["label"], out["source"], strict=True),
                   strict=True))
    assert all(got[p] == (reviewed[key], "reviewed") for p in members[key])  # spread
    assert all(got[p] == (label, "seed") for p in others)  # the word still seeds


def _queue_cli(built: dict[str, Any], tmp: Path, order: str | None, args: list[str]
               ) -> tuple[int, str, list[str]]:
    from typer.testing import CliRunner

    from weaklabel.cli import app

    cfg = tmp / "review.yaml"
    cfg.write_text(f"review:\n  queue: {order}\n" if order else "{}\n", encoding="utf-8")
    out = tmp / "queue.csv"
    r = CliRunner().invoke(app, ["review", "queue", "-w", str(built["ws"].root), "-c",
                                 str(cfg), "-o", str(out), *args])
    ids = pd.read_csv(out, dtype=str, keep_default_na=False)["post_id"].tolist() \
        if r.exit_code == 0 else []
    return r.exit_code, r.output + (r.stderr if r.stderr_bytes else ""), ids


def test_the_config_and_the_option_choose_the_queue_order(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from weaklabel.review.triage import build_queue, load_queue_inputs

    inputs = load_queue_inputs(built["ws"])
    want = {name: build_queue(**inputs, **over)["post_id"].tolist() for name, over in
            (("default", {}), ("audit", {"audit": True}), ("coverage", {"coverage": True}))}
    assert want["audit"] != want["default"] != want["coverage"]
    for order in ("audit", "coverage", None):
        code, _, ids = _queue_cli(built, tmp_path, order, [])
        assert code == 0 and ids == want[order or "default"]
    # the option outranks the config
    code, _, ids = _queue_cli(built, tmp_path, "audit", ["--order", "coverage"])
    assert code == 0 and ids == want["coverage"]
    # a typo names the closest order, in the option and in the config
    code, text, _ = _queue_cli(built, tmp_path, None, ["--order", "audt"])
    assert code == 1 and "did you mean 'audit'" in text and "Traceback" not in text
    code, text, _ = _queue_cli(built, tmp_path, "coverag", [])
    assert code == 1 and "review.yaml:2: review.queue" in text
    assert "did you mean 'coverage'" in text
