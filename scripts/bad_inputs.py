"""Try bad inputs on the `harness` command the way a new user would, and print a Markdown table:
the command, its exit code, the line it printed, and the seconds it took to fail.

    python scripts/bad_inputs.py > bad-inputs.md

Runs in a temporary directory outside any git repository (so lm-eval's git probe would show
its noise if it leaked), on a tiny random model directory; each command is a fresh process,
so the seconds include Python and library start-up, as a user sees them. CPU seconds (user +
system) are shown beside the wall-clock ones: on a shared machine they say what an idle one
would take.
"""

from __future__ import annotations

import os
import resource
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["--model", "tiny-llama"]
BASE = [*TINY, "--task", "int_mult", "--limit", "2", "--device", "cpu"]

CASES: list[list[str]] = [
    ["bench", *BASE, "--strategy", "eigne"],
    ["bench", *TINY, "--task", "int_mlt"],
    ["bench", *TINY, "--task", "int_sum,nope_task"],
    ["bench", "--model", "smollm2-13m", "--task", "int_mult"],
    ["bench", "--model", "./missing-dir", "--task", "int_mult"],
    ["bench", "--model", "nothing-here.gguf"],
    ["bench", "--model", "nobody/no-such-model"],
    ["bench", "--model", "notes.txt"],
    ["bench", "--model", "empty-dir"],
    ["bench", *BASE, "--strategy", "eigen", "--scorer", "psychic"],
    ["bench", *BASE, "--strategy", "eigen", "--pruner", "prune-all"],
    ["bench", *BASE, "--strategy", "eigen", "--matrices", "kk"],
    ["bench", *BASE, "--strategy", "eigen", "--layers", "7"],
    ["bench", *BASE, "--strategy", "eigen", "--layers", "1-x"],
    ["bench", *BASE, "--device", "tpu"],
    ["bench", *BASE, "--dtype", "int4"],
    ["bench", *BASE, "--strategy", "eigen", "--fraction", "1.5"],
    ["bench", *BASE, "--strategy", "eigen", "--fraction", "a lot"],
    ["bench", *BASE, "--seed", "abc"],
    ["bench", *BASE, "--limit", "0"],
    ["bench", *BASE, "--calibration-size", "0"],
    ["bench", *BASE, "--select-on", "test"],
    ["bench", *BASE, "--folds", "1"],
    ["bench", *BASE, "--folds", "401"],
    ["bench", *BASE, "--folds", "many"],
    ["bench", *BASE, "--strategy", "eigen", "--decomposition", "whitenned"],
    ["bench", *BASE, "--strategy", "eigen", "--also-eval", "nope_task"],
    ["bench", *BASE, "--fractoin", "0.1"],
    ["bench", *BASE, "--tasks-dir", "no-such-tasks"],
    ["bench", *TINY, "--task", "my_task", "--tasks-dir", "tasks-broken-yaml"],
    ["bench", *TINY, "--task", "my_task", "--tasks-dir", "tasks-missing-function"],
    ["bench", *TINY, "--task", "my_task", "--tasks-dir", "empty-dir"],
    ["bench", *BASE, "--data-dir", "no-such-data"],
    ["bench", *BASE, "--strategy", "eigen", "--pruner", "threshold"],
    ["bench", *BASE, "--strategy", "eigen", "--calibration-size", "17", "--calibration-batch-size", "16"],
    ["bench", *BASE, "--strategy", "eigen", "--calibration-batch-size", "1"],
    ["bench", *BASE, "--strategy", "eigen", "--save", "notes.txt"],
    ["bench", *BASE, "--strategy", "eigen", "--fraction", "0.1,0.2", "--save", "out-model"],
    ["bench", *BASE, "--output", "empty-dir"],
    ["bench", *BASE, "--output", "notes.txt/results.csv"],
    ["bench", *BASE, "--output", "not-results.csv"],
    ["bench", *BASE, "--output", "picture.csv"],
    ["bench", *BASE, "--output", "damaged.csv"],
    ["bench", *BASE, "--output", "truncated-bench.csv"],
    ["leaderboard", "not-results.csv"],
    ["leaderboard", "missing.csv"],
    ["leaderboard", "truncated.csv", "--out-dir", "lb"],
    ["leaderboard", "truncated.csv", "--out-dir", "lb", "--task", "nope"],
    ["bench", *BASE, "--executor", "nope"],
    ["bench", *BASE, "--executor", "ray", "--address", "127.0.0.1:1"],
    ["bench", *BASE, "--executor", "ray", "--address", "NOT_RAY"],
    ["bench", *BASE, "--executor", "ray", "--address", "head-node"],
    ["bench", *BASE, "--executor", "ray", "--max-workers", "0"],
    ["bench", *BASE, "--executor", "ray", "--cpus-per-worker", "0"],
    ["bench", *BASE, "--executor", "ray", "--max-retries", "-1"],
    ["benh", "--task", "int_mult"],
    ["tasks", "--tasks-dir", "no-such-tasks"],
]


def setup(root: Path) -> None:
    """The files the cases refer to."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness import leaderboard
    from harness.leaderboard import Row
    from harness.testing import tiny_model_dir

    tiny_model_dir(root / "tiny-llama", "llama")
    (root / "empty-dir").mkdir()
    (root / "notes.txt").write_text("my notes\n")
    (root / "not-results.csv").write_text("name,age\nada,36\n")
    (root / "picture.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    rows = [Row(model="m", task="int_mult", split=split, strategy=s, fraction=f, metric="acc",
                value=0.5, stderr=0.1, n=10, seed=0, seconds=1.0, harness_version="0",
                timestamp="now", config_hash=f"h{i}")
            for i, (s, f, split) in enumerate([("none", 0.0, "test"), ("eigen", 0.1, "validation"),
                                               ("eigen", 0.1, "test"), ("eigen", 0.2, "test")])]
    for name in ("truncated.csv", "truncated-bench.csv", "damaged.csv"):
        leaderboard.append(root / name, rows)
        text = (root / name).read_text()
        if name == "damaged.csv":
            lines = text.splitlines(keepends=True)
            lines[2] = ",".join(lines[2].split(",")[:5]) + "\n"
            (root / name).write_text("".join(lines))
        else:
            (root / name).write_text(text[:-30])
    broken = root / "tasks-broken-yaml"
    broken.mkdir()
    (broken / "my_task.yaml").write_text("task: my_task\ndoc_to_text: {{q}}: oops\n  bad: [\n")
    missing = root / "tasks-missing-function"
    missing.mkdir()
    (missing / "my_task.yaml").write_text("task: my_task\nprocess_docs: !function my_utils.process\n")


def main() -> None:
    harness = [sys.executable, "-m", "harness.cli"]
    env = {**os.environ, "EIGENHARNESS_PLUGINS": "", "PYTHONUNBUFFERED": "1", "RAY_ADDRESS": ""}
    # NOT_RAY: a port where something listens that is not a Ray cluster (the kernel accepts)
    not_ray = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{not_ray.getsockname()[1]}"
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as tmp, not_ray:
        root = Path(tmp)
        setup(root)
        print("| # | command | exit | line printed | seconds | CPU seconds |")
        print("|---|---|---|---|---|---|")
        n_one_line = 0
        for i, args in enumerate(CASES, 1):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            args = [address if a == "NOT_RAY" else a for a in args]
            run = subprocess.run([*harness, *args], cwd=root, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            err = [line for line in run.stderr.replace("\r", "\n").splitlines() if line.strip()]
            errors = [line for line in err if line.startswith(("error:", "warning:"))]
            line = errors[0] if errors else (err[-1] if err else run.stdout.strip().splitlines()[-1])
            n_one_line += run.returncode == 2 and len(err) == 1
            extra = f" (+{len(err) - 1} more stderr lines)" if len(err) > 1 else ""
            cell = (line + extra).replace("|", "\\|")
            command = f"`harness {shlex.join(args)}`"
            print(f"| {i} | {command} | {run.returncode} | {cell} | {seconds:.1f} | {cpu:.1f} |", flush=True)
        print(f"\n{len(CASES)} inputs; {n_one_line} failed with exit 2 and exactly one stderr line.")


if __name__ == "__main__":
    main()
