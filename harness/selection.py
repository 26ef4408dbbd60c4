"""Model -> candidate matrices (architecture plugins) -> the selected ones (selector plugins)."""

from __future__ import annotations

from torch import nn

from harness.errors import HarnessError, unknown
from harness.matrices import Matrix, parse_layers
from harness.plugins import registry


def candidates(model: nn.Module) -> list[Matrix]:
    """Every prunable matrix of `model`, from the architecture plugin for its model_type."""
    model_type = getattr(model.config, "model_type", type(model).__name__)
    table = registry().components["architectures"]
    if model_type not in table:
        raise unknown(
            "architecture", model_type, table,
            "add one with a plugin implementing register_architectures (see harness/hookspecs.py)",
        )
    return table[model_type].value(model)


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
