"""Data for the paper's synthetic tasks, made deterministically (no downloads).

INT-SUM: "{a} + {b} =" -> " {a+b}" for all a, b in [0, 100);  INT-MULT: "{a} x {b} =" ->
" {a*b}" for all a, b in [0, 20). As in the paper, a random 80/20 train/test split with seed
42; a validation split (a fifth of that train part) is carved out so pruning
hyper-parameters can be chosen without touching test.
"""

from __future__ import annotations

import random

SEED = 42


def splits(n: int, op: str) -> dict[str, list[dict]]:
    docs = []
    for a in range(n):
        for b in range(n):
            answer = a + b if op == "+" else a * b
            docs.append({"a": a, "b": b, "op": op, "answer": str(answer)})
    order = list(range(len(docs)))
    random.Random(SEED).shuffle(order)
    n_test = len(docs) // 5
    test, rest = order[:n_test], order[n_test:]
    n_val = len(rest) // 5
    validation, train = rest[:n_val], rest[n_val:]
    return {name: [docs[i] for i in idx]
            for name, idx in (("train", train), ("validation", validation), ("test", test))}


def _dataset(n: int, op: str):
    import datasets

    return datasets.DatasetDict(
        {name: datasets.Dataset.from_list(rows) for name, rows in splits(n, op).items()}
    )


def int_sum(**metadata):
    return _dataset(100, "+")


def int_mult(**metadata):
    return _dataset(20, "x")
