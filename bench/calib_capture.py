"""Save one default propagate run's votes per dev corpus, for offline calibration work.

Runs ``label_posts`` once per corpus (the workspaces of ``bench_calibration.py``) and
saves, beside gold, everything the calibration sees: the seed labels, every held-out run
(its mask, every source's votes and the chosen combination on it) and the final votes,
posterior and written labels. An estimator can then be tried in seconds against gold
without re-running the sources. Gold is only saved for scoring.

Usage: python bench/calib_capture.py [--corpus chatbot petitions example]
       [--petition-rows 20000] [--out bench/out/calibration]
Writes OUT/CORPUS/votes.npz.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_quality import prepare_corpus, run_corpora  # noqa: E402


def run_corpus(name: str, spec: dict[str, Any], out: Path, *, petition_rows: int) -> dict:
    import numpy as np

    from weaklabel.labels import propagate as P

    prep = prepare_corpus(name, spec, out, petition_rows=petition_rows)
    ws, cfg, labelmap, gold = prep["ws"], prep["cfg"], prep["labelmap"], prep["gold"]
    runs: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    orig_run, orig_final, orig_input = P._held_out_run, P._final_votes, P._source_input
    orig_choose = P._choose

    def held_run(inp, held, *a, **k):  # type: ignore[no-untyped-def]
        votes, post = orig_run(inp, held, *a, **k)
        runs.append({"held": held.copy(), "post": post.copy(),
                     **{f"v_{s}": v.copy() for s, v in votes.items()}})
        return votes, post

    def choose(inp, held, *a, **k):  # type: ignore[no-untyped-def]
        choice, votes = orig_choose(inp, held, *a, **k)
        final["choose_held"] = held.copy()
        for s, v in votes.items():
            final[f"cv_{s}"] = v.copy()
        return choice, votes

    def final_votes(inp, choice, cfg_):  # type: ignore[no-untyped-def]
        votes, post = orig_final(inp, choice, cfg_)
        final.update({"post": post.copy(), "seed": inp.seed.copy(),
                      "is_seed": np.asarray(inp.is_seed).copy(),
                      "combine": choice.combine, "rounds": choice.rounds,
                      "keep_by_blend": choice.keep_by_blend,
                      **{f"v_{s}": v.copy() for s, v in votes.items()}})
        return votes, post

    P._held_out_run, P._final_votes, P._choose = held_run, final_votes, choose
    t0 = time.process_time()
    try:
        prop, _ = P.label_posts(ws, labelmap, cfg)
    finally:
        P._held_out_run, P._final_votes, P._choose = orig_run, orig_final, orig_choose
        del orig_input
    cpu = time.process_time() - t0
    ids = labelmap.id_of()
    g = dict(zip(gold["post_id"], gold["label"].map(lambda x: ids.get(x, x)), strict=True))
    cidx = {c: j for j, c in enumerate(prop.classes)}
    gold_idx = np.array([cidx.get(g.get(p, ""), -1) for p in prop.labels["post_id"]])
    save: dict[str, Any] = {"classes": np.array(prop.classes), "gold": gold_idx,
                            "source": prop.labels["source"].to_numpy().astype(str),
                            "label": prop.labels["label"].to_numpy().astype(str),
                            "top_label": prop.labels["top_label"].to_numpy().astype(str),
                            "confidence": prop.labels["confidence"].to_numpy(float),
                            "evidence": prop.labels["evidence"].to_numpy().astype(str),
                            **{k: np.asarray(v) for k, v in final.items()}}
    for i, r in enumerate(runs):
        for k, v in r.items():
            save[f"run{i}_{k}"] = v
    path = out / name / "votes.npz"
    np.savez_compressed(path, **save)
    est = {k: v for k, v in prop.estimates.items() if k != "trials"}
    print(name, f"cpu {cpu:.1f} s", est, file=sys.stderr)
    return {"cpu_seconds": round(cpu, 1), "runs": len(runs), "estimates": est}


def main(argv: list[str] | None = None) -> int:
    done = run_corpora(argv, run_corpus, description=__doc__.splitlines()[0], rows=20_000,
                       out=HERE / "out/calibration", filename="capture.json")
    return 0 if done else 1


if __name__ == "__main__":
    raise SystemExit(main())
