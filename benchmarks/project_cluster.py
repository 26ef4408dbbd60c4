"""Project a sweep's wall time on N workers from a results CSV measured with --executor local.

Replays the units `harness.work.cut_units` cuts (the cut `--executor ray` uses) with greedy
scheduling, each unit costing its cells' measured seconds, plus one scoring pass for every
extra unit a halving makes. Baselines (one per task) come first. A projection, not a
measurement: start-up (Ray, a model load per worker) is not included.

    python benchmarks/project_cluster.py leaderboard/reference/arithmetic.csv --workers 8
"""

from __future__ import annotations

import argparse
import heapq

import pandas as pd

from harness.work import Cell, cut_units


def makespan(jobs: list[float], workers: int) -> float:
    free = [0.0] * workers
    for t in jobs:
        heapq.heappush(free, heapq.heappop(free) + t)
    return max(free)


def project(csv: str, workers: int) -> dict[int, tuple[int, float, float, float]]:
    """{workers: (units, makespan, costliest job, total work)} for 1 worker and `workers`."""
    d = pd.read_csv(csv)
    baselines = {t: g.eval_seconds.sum() for t, g in d[d.strategy == "none"].groupby("task")}
    pruned = d[d.strategy != "none"].drop_duplicates("config_hash")
    rows = {r.config_hash: r for r in pruned.itertuples()}
    grid = [Cell(r.task, r.strategy, int(r.seed), float(r.fraction), r.config_hash)
            for r in pruned.itertuples()]
    examples = {t: d[(d.task == t) & (d.strategy == "none")].n.sum() for t in baselines}

    def unit_seconds(unit) -> float:  # scoring once per unit, then each cell's own time
        cells = [rows[c.key] for c in unit.cells]
        return sum(r.seconds - r.scoring_seconds for r in cells) + cells[0].scoring_seconds

    out = {}
    for w in (1, workers):
        units = cut_units(grid, w, lambda c: examples[c.task], sum(examples.values()))
        jobs = list(baselines.values()) + [unit_seconds(u) for u in units]
        out[w] = (len(units), makespan(jobs, w), max(jobs), sum(jobs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    for csv in args.csv:
        for w, (units, span, longest, work) in project(csv, args.workers).items():
            print(f"{csv}: {w} worker(s): {units} units, work {work:.0f} s, makespan {span:.0f} s, "
                  f"costliest job {longest:.0f} s")


if __name__ == "__main__":
    main()
