"""Model -> candidate matrices (architecture plugins, else discovery) -> the selected ones."""

from __future__ import annotations

from torch import nn

from harness import discovery
from harness.errors import HarnessError
from harness.matrices import Matrix, parse_layers
from harness.plugins import registry


def model_type(model: nn.Module) -> str:
    return getattr(getattr(model, "config", None), "model_type", None) or type(model).__name__


def architecture(model: nn.Module) -> str:
    """What found the matrices, for rows and `harness plugins`: "llama (registered)"."""
    name = model_type(model)
    how = "registered" if name in registry().components["architectures"] else "discovered"
    return f"{name} ({how})"


def candidates(model: nn.Module) -> list[Matrix]:
    """Every prunable matrix of `model`: from the architecture plugin registered for its
    model_type, else found by structural discovery (which raises where it cannot be sure)."""
    table = registry().components["architectures"]
    name = model_type(model)
    if name in table:
        return table[name].value(model)
    if not hasattr(model, "config"):
        raise discovery.Undiscoverable(
            f"unknown architecture '{name}' (none registered) and no config to discover it from; "
            + discovery.HOW_TO_REGISTER)
    return discovery.discover(model).matrices


def select(all_matrices: list[Matrix], spec: str, layers: str | None = None) -> list[Matrix]:
    """The union of the named selectors' picks (`"k,v"`), restricted to `layers`."""
    chosen: dict[str, Matrix] = {}
    for name in (s.strip() for s in spec.split(",") if s.strip()):
        for m in registry().get("selectors", name)(all_matrices):
            chosen[m.id] = m
    n_layers = 1 + max((m.layer for m in all_matrices), default=-1)
    keep = parse_layers(layers, n_layers)
    picked = [m for m in chosen.values() if keep is None or m.layer in keep]
    if not picked:
        raise HarnessError(f"--matrices '{spec}' with --layers '{layers}' selects no matrix")
    return picked
