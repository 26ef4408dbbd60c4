"""What the progress bar says: nested stages, lines kept above the bar, stages streamed out of
a worker's job, a time left from the cells' costs, and eigen-verified's cost said first."""

from __future__ import annotations

import io
import re
import threading

import pytest
from click.testing import CliRunner

from harness import progress as notes
from harness.cli import cli
from harness.work import Progress


@pytest.fixture
def heard():
    """Every Progress this process emits, as the driver would get them."""
    events: list[Progress] = []
    notes.listen(events.append)
    yield events
    notes.listen(None)


def test_stages_nest_and_lines_are_kept_apart(heard):
    with notes.stage("int_mult eigen f=0.1 seed=0"):
        with notes.stage("scoring"):
            notes.announce("eigen-verified: measuring 9 candidates")
        notes.Counter("measuring candidates", 864)  # shows 0/864 at once
    assert [(e.text, e.line) for e in heard] == [
        ("int_mult eigen f=0.1 seed=0", False),
        ("int_mult eigen f=0.1 seed=0 › scoring", False),
        ("eigen-verified: measuring 9 candidates", True),
        ("int_mult eigen f=0.1 seed=0 › measuring candidates 0/864", False),
    ]


def test_without_a_listener_stages_are_silent_and_say_writes_to_stderr(capsys):
    with notes.stage("loading the model"):
        notes.announce("nobody hears this")
    notes.say("converting model.gguf once")
    out, err = capsys.readouterr()
    assert out == "" and err == "converting model.gguf once\n"


def test_say_inside_a_sweep_is_a_line_above_the_bar(heard):
    notes.say("converting model.gguf once")
    assert heard == [Progress("converting model.gguf once", line=True)]


def test_streamed_interleaves_a_jobs_stages_with_its_events():
    """The job waits until the consumer has seen its stage, so the stage must travel while
    the job is still running (as a Ray worker's does); lines all arrive, in order."""
    seen_stage = threading.Event()

    def job():
        yield "cell 1"
        with notes.stage("measuring candidates 0/864"):
            assert seen_stage.wait(timeout=60)
        for k in range(3):
            notes.announce(f"line {k}")
        yield "cell 2"

    out = []
    for event in notes.streamed(job(), interval=0.01):
        out.append(event)
        if event == Progress("measuring candidates 0/864"):
            seen_stage.set()
    assert out[0] == "cell 1" and out[-1] == "cell 2"
    assert Progress("measuring candidates 0/864") in out
    assert [e.text for e in out if isinstance(e, Progress) and e.line] == ["line 0", "line 1", "line 2"]


def test_streamed_raises_the_jobs_error():
    def job():
        yield "cell 1"
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for event in notes.streamed(job(), interval=0.01):
            got.append(event)
    assert got == ["cell 1"]


def test_time_left_comes_from_costs_not_from_the_count(monkeypatch):
    """One costly cell done in 100 s, two cheap ones left: about 2 s left, not 200."""
    clock = [1000.0]
    monkeypatch.setattr(notes.time, "perf_counter", lambda: clock[0])
    bar = notes.CostBar(total=3, file=io.StringIO(), desc="cells", unit="cell")
    assert "?" in bar.format_meter(**bar.format_dict)  # nothing done: no guess
    bar.plan({"int_sum none": 3600.0, "int_mult eigen": 36.0, "int_mult random-sv": 36.0})
    clock[0] += 100.0
    bar.spend("int_sum none")
    bar.update(1)
    d = bar.format_dict
    assert (d["total"] - d["n"]) / d["rate"] == pytest.approx(100.0 * 72 / 3600)
    bar.counting(600.0)  # a count inside the running cell expects 10 min more: at least that
    d = bar.format_dict
    assert (d["total"] - d["n"]) / d["rate"] == pytest.approx(600.0)
    bar.close()


def test_a_count_says_its_time_left_to_the_bar(heard, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(notes.time, "perf_counter", lambda: clock[0])
    counter = notes.Counter("measuring candidates", 100)
    clock[0] = 10.0
    counter.update(20)
    assert heard[-1] == Progress("measuring candidates 20/100, about 40 s left", left=40.0)


def test_eigen_verified_says_its_cost_and_on_a_cpu_how_to_size_it(tiny_dir, tmp_path):
    base = ["bench", "--model", str(tiny_dir), "--task", "int_mult", "--strategy", "eigen-verified",
            "--fraction", "0.2", "--limit", "2", "--calibration-size", "8", "--device", "cpu",
            "--select-on", "none"]
    default = CliRunner().invoke(cli, [*base, "--output", str(tmp_path / "a.csv")])
    assert default.exit_code == 0, default.output
    line = next(x for x in default.output.splitlines() if x.startswith("eigen-verified f=0.2 seed=0:"))
    n = int(re.search(r"measuring (\d+) candidates", line).group(1))  # 2 x 20% of the K values
    assert f"on 16 calibration examples each ({16 * n} sequences forwarded; --limit does not bound" in line
    assert line.endswith("on a CPU, --option verify_multiple=1.5 --option verify_examples=8 "
                         "costs a quarter of that")
    assert f"› measuring candidates 0/{n}" in default.output  # the bar said it while it ran
    sized = CliRunner().invoke(cli, [*base, "--output", str(tmp_path / "b.csv"), "--option",
                                     "verify_multiple=1.5", "--option", "verify_examples=8"])
    assert sized.exit_code == 0, sized.output
    line = next(x for x in sized.output.splitlines() if "seed=0: measuring" in x)
    assert re.search(r"measuring \d+ candidates on 8 calibration examples", line) and "on a CPU" not in line
