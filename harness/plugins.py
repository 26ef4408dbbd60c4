"""The plugin manager: loads the `eigenharness` entry-point group and collects components.

Built-in plugins (the project's `plugins/` folder, importable as `eigenharness_plugins`) are
registered through the same entry-point group as third-party ones. The environment variable
``EIGENHARNESS_PLUGINS`` limits which *external* plugins load: a comma list of entry-point
names, empty for none (tests use that to keep a user's installed plugins out). Built-ins
always load.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import os
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pluggy
import torch

from harness import __version__, hookspecs
from harness.edits import Edit
from harness.errors import HarnessError, unknown
from harness.recipes import Strategy

GROUP = "eigenharness"
BUILTIN_PACKAGE = "eigenharness_plugins"
KINDS = ("architectures", "selectors", "decompositions", "scorers", "objectives", "pruners",
         "strategies", "executors")


@dataclass
class Component:
    name: str
    value: Any
    plugin: str


@dataclass
class Registry:
    """Every registered component by kind and name, with the plugin that registered it."""

    pm: pluggy.PluginManager
    versions: dict[str, str] = field(default_factory=dict)
    components: dict[str, dict[str, Component]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def get(self, kind: str, name: str, hint: str = "") -> Any:
        table = self.components[kind]
        if name not in table:
            raise unknown(kind.rstrip("s") if kind != "strategies" else "strategy", name, table, hint)
        return table[name].value

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])


def _allowed_external() -> set[str] | None:
    raw = os.environ.get("EIGENHARNESS_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def make_plugin_manager() -> tuple[pluggy.PluginManager, dict[str, str]]:
    """A manager with the built-ins and the allowed external plugins, and their versions."""
    versions: dict[str, str] = {}
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    allowed = _allowed_external()
    builtin_seen = set()
    for ep in importlib.metadata.entry_points(group=GROUP):
        builtin = ep.value.startswith(BUILTIN_PACKAGE + ".")
        if not builtin and allowed is not None and ep.name not in allowed:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not hide behind a traceback
            raise HarnessError(
                f"plugin '{ep.name}' ({ep.value}) failed to load: {exc}; "
                f"set EIGENHARNESS_PLUGINS to the plugins you want (empty for none)"
            ) from exc
        pm.register(plugin, name=ep.name)
        versions[ep.name] = ep.dist.version if ep.dist else "unknown"
        if builtin:
            builtin_seen.add(ep.value.split(".", 1)[1])
    # An install older than the source tree (an editable install made before a plugin was
    # added) lacks some entry points: register the package's other modules directly. The
    # pyproject's entry points are the one list; tests/test_plugins.py fails if they drift.
    for module in builtin_modules():
        if module not in builtin_seen and not pm.has_plugin(module):
            pm.register(importlib.import_module(f"{BUILTIN_PACKAGE}.{module}"), name=module)
            versions[module] = __version__
    pm.check_pending()
    return pm, versions


def builtin_modules() -> list[str]:
    """Every module of the built-in plugin package (each one is a plugin)."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def collect(pm: pluggy.PluginManager, versions: dict[str, str] | None = None) -> Registry:
    """Call every register_* hook once and index what the plugins registered."""
    registry = Registry(pm, dict(versions or {}))
    for kind in KINDS:
        hook = getattr(pm.hook, f"register_{kind}")
        for impl in hook.get_hookimpls():
            plugin_name = impl.plugin_name

            def register(name_or_value: Any, value: Any = None, *, _kind=kind, _p=plugin_name):
                where = f"plugin '{_p}', hook register_{_kind}"
                if _kind == "strategies":
                    if not isinstance(name_or_value, Strategy):
                        raise HarnessError(f"{where}: register() takes a harness.strategy.Strategy, "
                                           f"got {type(name_or_value).__name__}")
                    name, value = name_or_value.name, name_or_value
                    if value.apply is not None:
                        value = dataclasses.replace(value, apply=checked_apply(name, value.apply))
                else:
                    name = name_or_value
                    if not isinstance(name, str) or not callable(value):
                        raise HarnessError(f"{where}: register() takes (name: str, a callable), "
                                           f"got ({type(name).__name__}, {type(value).__name__})")
                table = registry.components[_kind]
                if name in table:
                    raise HarnessError(
                        f"{_kind} '{name}' is registered twice: by plugin '{table[name].plugin}' "
                        f"and by plugin '{_p}' (hook register_{_kind}); uninstall one or set "
                        "EIGENHARNESS_PLUGINS"
                    )
                table[name] = Component(name, value, _p)

            try:
                impl.function(register=register)
            except HarnessError:
                raise
            except Exception as exc:  # name the culprit: the traceback would point into pluggy
                raise HarnessError(
                    f"plugin '{plugin_name}' failed in its hook register_{kind}: "
                    f"{type(exc).__name__}: {exc}".splitlines()[0]
                ) from exc
    return registry


def checked_apply(name: str, apply: Any) -> Any:
    """A strategy's own `apply`, whose failure or wrong return names the strategy, its plugin
    and the hook (the bench loop calls it; a traceback would point into the loop)."""
    @functools.wraps(apply)
    def run(request):
        with plugin_call("strategies", name):
            edit = apply(request)
        if not isinstance(edit, Edit):
            raise HarnessError(
                f"strategy '{name}' of plugin '{owner('strategies', name)}' (hook register_strategies) "
                f"returned {type(edit).__name__} from apply; expected a harness.edits.Edit")
        return edit

    return run


SINGULAR = {"scorers": "scorer", "pruners": "pruner", "strategies": "strategy",
            "decompositions": "decomposition",
            "objectives": "objective"}


@contextmanager
def plugin_call(kind: str, name: str) -> Iterator[None]:
    """A plugin component's own failure becomes one line naming it, its plugin and its hook.

    HarnessError (a message the plugin wrote for the user) and out-of-memory errors (the
    sweep runner suggests a smaller option for those) pass through unchanged.
    """
    try:
        yield
    except (HarnessError, MemoryError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as exc:
        raise HarnessError(
            f"{SINGULAR[kind]} '{name}' of plugin '{owner(kind, name)}' (hook register_{kind}) "
            f"failed: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc


def check_tensors(kind: str, name: str, got: Any, expected: dict[str, tuple], floating: bool) -> None:
    """What a scorer or pruner returned has one tensor per matrix id, of the promised shape
    and dtype (float scores, bool keep-masks); else one line naming the plugin and the hook."""
    where = f"{SINGULAR[kind]} '{name}' of plugin '{owner(kind, name)}' (hook register_{kind})"
    what = "a float tensor (heads, rank)" if floating else "a bool keep-mask shaped like its scores"
    if not isinstance(got, dict) or set(got) != set(expected):
        given = sorted(got)[:3] if isinstance(got, dict) else type(got).__name__
        raise HarnessError(f"{where} must return {{matrix id: {what}}} for ids {sorted(expected)[:3]}"
                           f"{'...' if len(expected) > 3 else ''}; got {given}")
    for key, shape in expected.items():
        t = got[key]
        if not isinstance(t, torch.Tensor):
            raise HarnessError(f"{where} returned {type(t).__name__} for {key}; expected {what}")
        ok = t.dtype.is_floating_point if floating else t.dtype == torch.bool
        if tuple(t.shape) != shape or not ok:
            raise HarnessError(f"{where} returned {t.dtype} {tuple(t.shape)} for {key}; expected "
                               f"{what}: {'float' if floating else 'torch.bool'} {shape}")


def owner(kind: str, name: str) -> str:
    """Which plugin registered a component (for errors that must name it)."""
    component = registry().components[kind].get(name)
    return component.plugin if component else "?"


_registry: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        _registry = collect(*make_plugin_manager())
    return _registry


def reset() -> None:
    """Forget the registry so the next `registry()` reloads plugins (tests use it)."""
    global _registry
    _registry = None
