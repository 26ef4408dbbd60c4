"""The plugin core: a third-party plugin registered the way pytest tests plugins."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from harness import hookimpl, plugins
from harness.cli import cli
from harness.errors import HarnessError
from harness.strategy import Strategy
from harness.testing import registry_with


class ThirdParty:
    """A plugin offering a scorer, a pruner and a strategy that uses both."""

    @hookimpl
    def register_scorers(self, register):
        register("largest-first", lambda ctx: {m.id: -ctx.factors[m.id].S for m in ctx.matrices})

    @hookimpl
    def register_pruners(self, register):
        def first_head(scores, fraction, options):
            keep = {}
            for i, s in scores.items():
                k = torch.ones_like(s, dtype=torch.bool)
                k[0, : int(fraction * s.shape[1])] = False
                keep[i] = k
            return keep

        register("first-head", first_head)

    @hookimpl
    def register_strategies(self, register):
        register(Strategy("top-sv", "largest singular values of head 0", matrices="k",
                          scorer="largest-first", pruner="first-head", compensate=False))

    @hookimpl
    def register_objectives(self, register):
        def last_token_ce(logits, labels):  # the example of docs/plugins.md
            logits, targets = logits[:, :-1].float(), labels[:, 1:]
            last = (targets != -100).cumsum(1).argmax(1)
            rows = torch.arange(len(targets))
            ce = torch.nn.functional.cross_entropy(logits[rows, last], targets[rows, last].clamp_min(0),
                                                   reduction="none")
            has = (targets != -100).any(1)
            return torch.where(has, ce, 0.0), has.float()

        register("last-token", last_token_ce)


@pytest.fixture
def third_party():
    plugin = ThirdParty()
    plugin.__name__ = "thirdparty"  # the plugin name listings and errors show
    with registry_with(plugin) as registry:
        yield registry


def test_builtins_register_through_the_entry_point_group():
    reg = plugins.registry()
    assert {"eigen", "none", "random-sv", "smallest-sv", "magnitude", "laser"} <= set(reg.names("strategies"))
    assert reg.components["strategies"]["eigen"].plugin == "spectral_strategies"
    import importlib.metadata

    eps = {ep.name for ep in importlib.metadata.entry_points(group=plugins.GROUP)}
    assert set(plugins.builtin_modules()) <= eps


def test_pyproject_entry_points_are_the_one_list_of_builtins():
    """Each module of plugins/ is a built-in, declared once, as an entry point of pyproject.toml:
    a module added without its entry point (or an entry point left behind) fails here."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"][plugins.GROUP]
    assert declared == {m: f"{plugins.BUILTIN_PACKAGE}.{m}" for m in plugins.builtin_modules()}
    assert "majority" in declared


def test_an_install_older_than_the_source_tree_still_gets_every_builtin(monkeypatch):
    """An editable install made before a plugin was added lacks its entry point: the built-ins
    are then registered from the package itself (`--strategy majority` was once unknown so)."""
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])
    pm, versions = plugins.make_plugin_manager()
    assert set(versions) == set(plugins.builtin_modules())
    assert "majority" in plugins.collect(pm, versions).names("strategies")


def test_third_party_strategy_runs_in_bench_and_is_listed(third_party, tiny_dir, tmp_path):
    listing = CliRunner().invoke(cli, ["plugins"])
    assert "thirdparty" in listing.output and "top-sv" in listing.output
    assert "register_scorers" in listing.output and "register_objectives" in listing.output
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(cli, ["bench", "--model", str(tiny_dir), "--task", "int_mult",
                                      "--strategy", "top-sv", "--fraction", "0.5", "--limit", "3",
                                      "--output", str(out), "--select-on", "none"])
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out).iloc[0]
    assert row.strategy == "top-sv" and row.scorer == "largest-first" and row.pruner == "first-head"
    assert row.n_pruned == 2 * 4  # 2 layers, 4 of head 0's 8 values each

    # the third party's objective drives a built-in strategy's scores
    result = CliRunner().invoke(cli, ["bench", "--model", str(tiny_dir), "--task", "int_mult",
                                      "--strategy", "eigen", "--objective", "last-token",
                                      "--fraction", "0.5", "--limit", "3", "--calibration-size", "8",
                                      "--output", str(out), "--select-on", "none"])
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out).iloc[-1]
    assert row.strategy == "eigen[objective=last-token]" and row.objective == "last-token"
    assert "objectives: last-token" in CliRunner().invoke(cli, ["plugins"]).output


def test_duplicate_names_are_refused():
    pm, versions = plugins.make_plugin_manager()

    class Clash:
        @hookimpl
        def register_strategies(self, register):
            register(Strategy("eigen", "an impostor"))

    pm.register(Clash(), name="clash")
    with pytest.raises(HarnessError, match="strategies 'eigen' is registered twice"):
        plugins.collect(pm, versions)


def test_misspelled_hook_is_caught():
    pm, _ = plugins.make_plugin_manager()

    class Typo:
        @hookimpl
        def register_strategy(self, register):  # missing "s"
            pass

    pm.register(Typo(), name="typo")
    with pytest.raises(Exception, match="unknown hook"):
        pm.check_pending()


def test_env_variable_limits_external_plugins(monkeypatch):
    import importlib.metadata as md
    import sys
    import types

    module = types.ModuleType("fake_external_plugin")

    @hookimpl
    def register_strategies(register):
        register(Strategy("external-one", "from an installed package"))

    module.register_strategies = register_strategies
    monkeypatch.setitem(sys.modules, "fake_external_plugin", module)
    real = md.entry_points

    def entry_points(group=None):
        eps = list(real(group=group))
        return eps + [md.EntryPoint("fake", "fake_external_plugin", plugins.GROUP)]

    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", entry_points)
    monkeypatch.setenv("EIGENHARNESS_PLUGINS", "fake")
    assert "external-one" in plugins.collect(*plugins.make_plugin_manager()).names("strategies")
    monkeypatch.setenv("EIGENHARNESS_PLUGINS", "")
    reg = plugins.collect(*plugins.make_plugin_manager())
    assert "external-one" not in reg.names("strategies") and "eigen" in reg.names("strategies")
