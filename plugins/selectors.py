"""Selectors by matrix kind: what users type with `--matrices` (`k`, `k,v`, `mlp_in`, ...)."""

from __future__ import annotations

from harness import hookimpl
from harness.matrices import KINDS


def by_kind(kind: str):
    def select(matrices):
        return [m for m in matrices if m.kind == kind]

    select.__doc__ = f"every '{kind}' matrix"
    return select


def attention(matrices):
    """Q, K, V and O of every layer."""
    return [m for m in matrices if m.kind in ("q", "k", "v", "o")]


def mlp(matrices):
    """Every MLP matrix."""
    return [m for m in matrices if m.kind in ("mlp_in", "mlp_out")]


def every(matrices):
    """Every matrix the architecture exposes."""
    return list(matrices)


@hookimpl
def register_selectors(register):
    for kind in KINDS:
        register(kind, by_kind(kind))
    register("attn", attention)
    register("mlp", mlp)
    register("all", every)
