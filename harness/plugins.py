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
from dataclasses import dataclass, field
from typing import Any

import pluggy

from harness import hookspecs
from harness.errors import HarnessError, unknown
from harness.strategy import Strategy

GROUP = "eigenharness"
BUILTIN_PACKAGE = "eigenharness_plugins"
BUILTIN_MODULES = (
    "architectures",
    "selectors",
    "scorers",
    "pruners",
    "spectral_strategies",
    "magnitude",
    "laser",
    "executors",
    "verified",
    "iterative",
    "budget",
    "objectives",
    "objective_strategies",
    "decompositions",
)
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
    from harness import __version__

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
    # Running from a source tree that was never installed: register built-ins directly.
    for module in BUILTIN_MODULES:
        if module not in builtin_seen and not pm.has_plugin(module):
            pm.register(importlib.import_module(f"{BUILTIN_PACKAGE}.{module}"), name=module)
            versions[module] = __version__
    pm.check_pending()
    return pm, versions


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
    from harness.edits import Edit
    from harness.strategy import plugin_call

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
