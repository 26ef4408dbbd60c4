"""How the grid is cut into units, and what a retry resubmits."""

from __future__ import annotations

from harness.work import BaselineJob, Cell, WorkUnit, cut_units, unfinished


def grid(strategies, seeds, fractions, task="t"):
    return [Cell(task, s, seed, f, f"{task}-{s}-{seed}-{f}") for s in strategies for seed in seeds
            for f in fractions]


def test_one_task_of_four_strategies_and_three_seeds_keeps_four_workers_busy():
    cells = grid(["eigen", "random-sv", "a", "b"], [0, 1, 2], [0.2])
    units = cut_units(cells, workers=4)
    assert len(units) == 12 and all(len(u.cells) == 1 for u in units)
    # one fraction each: a unit is (task, strategy, seed), nothing to halve
    assert {(u.cells[0].strategy, u.cells[0].seed) for u in units} == {(c.strategy, c.seed) for c in cells}


def test_a_single_unit_is_halved_by_fraction_until_every_worker_has_work():
    cells = grid(["eigen"], [0], [0.05, 0.1, 0.2, 0.3])
    assert [len(u.cells) for u in cut_units(cells, workers=1)] == [4]  # local: scores once
    units = cut_units(cells, workers=4)
    assert sorted(len(u.cells) for u in units) == [1, 1, 1, 1]
    assert sorted(c.key for u in units for c in u.cells) == sorted(c.key for c in cells)


def test_a_costly_task_is_cut_finer_and_handed_out_first():
    cheap = grid(["eigen", "random-sv"], [0, 1], [0.1, 0.2], task="small")
    costly = grid(["eigen"], [0], [0.1, 0.2], task="big")
    cost = {"small": 1.0, "big": 100.0}
    units = cut_units(cheap + costly, workers=4, cost=lambda c: cost[c.task])
    assert [u.task for u in units[:2]] == ["big", "big"]  # halved: each half alone exceeds the rest
    assert all(len(u.cells) == 2 for u in units[2:])  # cheap units keep their fractions together


def test_a_retry_resubmits_only_the_cells_that_did_not_come_back():
    unit = WorkUnit(3, "t", tuple(grid(["eigen"], [0], [0.1, 0.2, 0.3])))
    retry = unfinished(unit, {unit.cells[0].key})
    assert retry.cells == unit.cells[1:] and retry.attempt == 1 and retry.id == 3
    assert unfinished(unit, {c.key for c in unit.cells}) is None
    assert unfinished(BaselineJob("t"), set()) == BaselineJob("t", attempt=1)
