"""Every hook a plugin can implement, documented top to bottom.

A plugin is a module (or object) with functions decorated by `harness.hookimpl` whose names
match the specs below. It is found through the `eigenharness` entry-point group:

    [project.entry-points.eigenharness]
    my_plugin = "my_package.my_module"

Each hook receives a `register` callback instead of returning a list, so one plugin can
offer several components; the core calls every hook once at start-up and then looks
components up by name (so `harness plugins` can list them and errors can name the choices).
Built-in components live in the project's `plugins/` folder and use exactly these hooks.

The data flow the hooks plug into (see harness/bench.py):

    architecture(model) -> [Matrix]          every prunable matrix of the model
    selector([Matrix])  -> [Matrix]          hook point 1: which of them to prune
    decomposition       -> Factors           U, S, Vh per Matrix, heads batched, in the
                                             strategy's basis (plain SVD or data-aware)
    scorer(ctx)         -> {id: (H, r)}      hook point 2: one score per singular value,
                                             estimating the change of an objective (the loss)
    pruner(scores, fraction, options) -> {id: (H, r) bool}   hook point 3: True = keep
    spectral.prune      -> Edit              weights rewritten (bias-compensated), undoable

and, around all of it, an executor decides where the cells of the grid run.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("eigenharness")
hookimpl = pluggy.HookimplMarker("eigenharness")


@hookspec
def register_architectures(register):
    """Teach the harness where the prunable matrices of a model family live.

    Call ``register(model_type, find_matrices)`` where ``model_type`` is the value of
    ``model.config.model_type`` (``"llama"``, ``"gpt2"``, ...) and
    ``find_matrices(model) -> list[harness.matrices.Matrix]`` returns every candidate matrix
    (all layers, all kinds). Selectors then pick from that list. Add one to support a new
    architecture without touching the core.
    """


@hookspec
def register_selectors(register):
    """Hook point 1, matrix selection.

    Call ``register(name, select)`` where ``select(matrices: list[Matrix]) -> list[Matrix]``
    picks from the architecture's candidates. Names are what users type with ``--matrices``
    (comma lists are unions: ``--matrices k,v``). Layer restriction (``--layers``) is applied
    by the core after selection.
    """


@hookspec
def register_decompositions(register):
    """The basis singular values live in (``--decomposition``, a strategy's ``decomposition``).

    Call ``register(name, factor)`` where
    ``factor(blocks: Tensor (H, o, i), activations, options: dict) -> harness.spectral.Factors``
    factors each head block as W = U diag(S) Vh, S descending per head. A data-aware basis
    transforms the input side, W T = U S V'ᵀ, and returns ``Factors(U, S, V'ᵀ T⁻¹)``: every
    scorer, pruner and the bias compensation then work unchanged, and the core checks that
    U S Vh gives W back. Mark ``factor`` with ``@harness.decompositions.uses("gram", alpha=0.5)``
    to receive ``activations`` (``harness.decompositions.Activations``: per-block mean |x| and,
    when asked for, the Gram matrix E[x xᵀ], float64, over the calibration tokens of the cell's
    task and seed) and to declare option defaults (set with ``--option``); unmarked, it gets
    ``None`` and is computed once per model. Built-ins: ``plain``, ``scaled`` (ASVD),
    ``whitened`` (SVD-LLM) in plugins/decompositions.py.
    """


@hookspec
def register_scorers(register):
    """Hook point 2, singular-value scoring.

    Call ``register(name, score)`` where ``score(ctx: harness.scoring.ScoringContext)``
    returns ``{matrix.id: Tensor of shape (heads, rank)}``, one float per singular value.
    Convention: **lower scores are pruned first** (a score estimates how much removing the
    direction would raise the task loss). ``ctx`` gives the model, the selected matrices,
    their ``Factors``, the calibration batches, a seed, and ``ctx.passes()``: one
    forward(+backward) pass per batch with each matrix's input and output gradient captured.
    """


@hookspec
def register_objectives(register):
    """The quantity scores estimate and measurements measure (``--objective``).

    Call ``register(name, rows)`` where ``rows(logits, labels) -> (sums, counts)`` gives, per
    sequence of the batch, a loss (lower is better) as a sum and the count it averages over;
    ``labels`` are the input ids with non-target positions set to -100 and ``logits`` are
    unshifted (position t-1 predicts token t). The batch's objective is
    ``sums.sum() / counts.sum()``; it must be differentiable in ``logits``, since gradient
    scorers back-propagate it. Built-ins: ``ce`` (the default), ``margin``, ``first-token``
    (plugins/objectives.py).
    """


@hookspec
def register_pruners(register):
    """Hook point 3, the pruning rule.

    Call ``register(name, prune)`` where
    ``prune(scores: dict[str, Tensor], fraction: float, options: dict) -> dict[str, Tensor]``
    returns a boolean keep-mask of the same shape as each score tensor (True = keep).
    ``fraction`` is the budget in [0, 1); ``options`` holds strategy/CLI extras
    (for example ``threshold``).
    """


@hookspec
def register_strategies(register):
    """Named recipes a user types with ``--strategy``.

    Call ``register(harness.strategy.Strategy(...))``. A spectral strategy names a selector,
    a scorer and a pruner and lets the core do the SVD path; a strategy that does not work
    on singular values (magnitude pruning, LASER, the unpruned baseline) passes its own
    ``apply(request) -> Edit`` and the core only evaluates and restores; a reference that
    needs no model (the majority answer) passes ``answerer(task) -> lm_eval LM`` instead.
    """


@hookspec
def register_executors(register):
    """Where the cells of a sweep run (``harness bench --executor NAME``).

    Call ``register(name, factory)`` where ``factory(options: harness.work.ExecutorOptions)``
    returns an object with ``workers`` (int), ``setup(config, n_jobs)``, ``launch(jobs)`` and
    ``close()`` (the protocol ``harness.work.Executor``). ``setup`` starts the workers, each
    building one ``harness.runner.CellRunner(config)`` (the model loaded once per worker), and
    raises ``HarnessError`` for a bad input (a model one cannot load); a worker that dies while
    starting is replaced like one that dies running a job, and when no worker can start the
    executor raises ``harness.errors.RunFailed`` (one line, exit 1); ``launch`` runs every job with
    ``runner.run(job)`` somewhere and yields the events, in completion order, as they come;
    ``close`` releases the workers (it is called after Ctrl-C too). Only the driver writes
    rows, so an executor may yield a cell twice but must report a dead worker as
    ``WorkerLost`` and resubmit only the cells that did not come back (``harness.work
    .unfinished``). Import the engine inside the factory, never at module level, and raise
    ``HarnessError`` with the install command when it is missing. Built-ins: ``local`` and
    ``ray`` (plugins/executors.py).
    """
