"""The plugin manager: loads the `eigenharness` entry-point group and collects components.

Built-in plugins (the project's `plugins/` folder, importable as `eigenharness_plugins`) are
registered through the same entry-point group as third-party ones. The environment variable
``EIGENHARNESS_PLUGINS`` limits which *external* plugins load: a comma list of entry-point
names, empty for none (tests use that to keep a user's installed plugins out). Built-ins
always load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from harness import hookspecs
from harness.errors import HarnessError, unknown

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
    "verified",
    "iterative",
    "budget",
    "objective_strategies",
)
KINDS = ("architectures", "selectors", "scorers", "pruners", "strategies")


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
                if _kind == "strategies":
                    name, value = name_or_value.name, name_or_value
                else:
                    name = name_or_value
                table = registry.components[_kind]
                if name in table:
                    raise HarnessError(
                        f"{_kind} '{name}' is registered twice: by plugin '{table[name].plugin}' "
                        f"and by plugin '{_p}'; uninstall one or set EIGENHARNESS_PLUGINS"
                    )
                table[name] = Component(name, value, _p)

            impl.function(register=register)
    return registry


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
