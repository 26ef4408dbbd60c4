"""Structural discovery: the prunable matrices of a causal LM no architecture plugin names.

Most decoder-only families differ only in names: a list of identical decoder layers, each
with an attention module holding Q, K, V and O projections (separate, or fused into one
module) and an MLP. Discovery finds them by shape and name, takes head counts from the config
(under any of their historical names), and then *checks the head layout against the model's
own forward* instead of trusting names: for one layer it flips the sign of one head's rows
of Q, K or V and watches which heads change in the KV cache and in O's input (see
`check_heads`). A fused projection's layout (blocked [Q | K | V], or GPT-NeoX's per-head /
Falcon's per-group interleave) is whichever candidate passes that check. Sign flips keep
every per-token norm unchanged, so attention that normalises keys across heads after the
projection (OLMo-2) is checked as exactly as the rest.

Where anything is missing or no layout passes, `discover` raises one line naming the model
type, what was missing, and how to register the architecture instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.errors import HarnessError
from harness.matrices import Matrix

LAYER_COUNTS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
HIDDEN_SIZES = ("hidden_size", "n_embd", "d_model", "dim", "model_dim")
HEAD_COUNTS = ("num_attention_heads", "n_head", "num_heads", "n_heads", "attention_heads")
KV_HEAD_COUNTS = ("num_key_value_heads", "n_kv_heads", "num_kv_heads", "n_head_kv", "kv_n_heads",
                  "multi_query_group_num")
HEAD_SIZES = ("head_dim", "attention_head_size", "head_size", "kv_channels")

Q_NAMES = {"q_proj", "q", "query", "wq", "q_lin", "query_proj", "project_q"}
K_NAMES = {"k_proj", "k", "key", "wk", "k_lin", "key_proj", "project_k"}
V_NAMES = {"v_proj", "v", "value", "wv", "v_lin", "value_proj", "project_v"}
O_NAMES = {"o_proj", "o", "out_proj", "dense", "c_proj", "wo", "out", "proj", "out_lin", "output_proj",
           "attention_out"}
FUSED_NAMES = {"qkv_proj", "query_key_value", "c_attn", "wqkv", "w_pack", "qkv", "att_proj"}
MLP_OUT_NAMES = {"down_proj", "fc2", "c_proj", "w2", "dense_4h_to_h", "wo", "fc_out", "down", "out_proj"}
ATTENTION_WORDS = ("attn", "attention")
MLP_WORDS = ("mlp", "feed_forward", "ffn", "feedforward")
HOW_TO_REGISTER = ("register it with a plugin implementing register_architectures "
                   "(see harness/hookspecs.py and plugins/architectures.py)")


@dataclass
class Linear:
    """A linear-like module with its (out, in) shape, whatever its storage order."""

    name: str  # full name in model.named_modules()
    module: nn.Module
    out_features: int
    in_features: int
    transposed: bool  # GPT-2's Conv1D stores (in, out)

    @property
    def leaf(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower()


def as_linear(name: str, module: nn.Module) -> Linear | None:
    w = getattr(module, "weight", None)
    if isinstance(module, nn.Linear):
        return Linear(name, module, w.shape[0], w.shape[1], False)
    if type(module).__name__ == "Conv1D" and isinstance(w, torch.Tensor) and w.dim() == 2:
        return Linear(name, module, w.shape[1], w.shape[0], True)
    return None


def _first(config, names, default=None):
    for name in names:
        try:
            value = getattr(config, name, None)
        except Exception:  # e.g. a per-layer attribute that refuses a global read
            value = None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


class Undiscoverable(HarnessError):
    """Discovery could not be sure; the message names the model type and what was missing."""


def _fail(model_type: str, what: str) -> Undiscoverable:
    return Undiscoverable(f"unknown architecture '{model_type}' (none registered) and structural "
                          f"discovery could not be sure of it: {what}; {HOW_TO_REGISTER}")


@dataclass
class Shape:
    hidden: int
    layers: int
    heads: int | None
    kv_heads: int | None
    head_dim: int | None


def config_shape(config) -> Shape:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = _first(text, HEAD_COUNTS)
    kv = _first(text, KV_HEAD_COUNTS)
    if kv is None and getattr(text, "multi_query", False) is True:
        kv = 1
    hidden = _first(text, HIDDEN_SIZES, 0)
    return Shape(hidden, _first(text, LAYER_COUNTS, 0), heads, kv, _first(text, HEAD_SIZES))


def layer_list(model: nn.Module, n_layers: int) -> tuple[str, nn.ModuleList] | None:
    """The decoder's layer list: the ModuleList of `n_layers` blocks of one class holding
    attention (the shallowest, so a block's own sub-lists are not mistaken for it)."""
    found = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.ModuleList) or len(mod) == 0:
            continue
        if n_layers and len(mod) != n_layers:
            continue
        if any(_attention_module(block) is not None for block in mod):
            found.append((name.count("."), name, mod))
    if not found:
        return None
    _, name, mod = min(found, key=lambda t: t[:2])
    return name, mod


def _why_no_layers(model: nn.Module, n_layers: int) -> str:
    """What the model has instead of decoder layers with recognisable attention."""
    lists = [mod for mod in model.modules() if isinstance(mod, nn.ModuleList) and len(mod) == n_layers]
    if not lists:
        return f"no list of {n_layers or 'N'} decoder layers (config layer count: {n_layers or 'missing'})"
    for name, mod in lists[0][0].named_modules():
        leaf = name.rsplit(".", 1)[-1].lower()
        if name and "norm" not in leaf and any(w in leaf for w in ATTENTION_WORDS):
            linears = sorted({n.rsplit(".", 1)[-1] for n, m in mod.named_modules() if as_linear(n, m)})
            return (f"its layers' attention '{name}' has no q/k/v or fused qkv projection "
                    f"(linear layers: {', '.join(linears) or 'none'})")
    return (f"its {n_layers} layers have no attention module "
            f"({', '.join(n for n, _ in lists[0][0].named_children())}): recurrent or state-space layers")


def _attention_module(block: nn.Module) -> tuple[str, nn.Module] | None:
    """The shallowest sub-module whose name says attention and that holds Q or a fused QKV."""
    best = None
    for name, mod in block.named_modules():
        leaf = name.rsplit(".", 1)[-1].lower()
        if not name or "norm" in leaf or "cross" in leaf or not any(w in leaf for w in ATTENTION_WORDS):
            continue
        leaves = {n.rsplit(".", 1)[-1].lower() for n, m in mod.named_modules() if as_linear(n, m)}
        if leaves & (Q_NAMES | FUSED_NAMES) and (best is None or name.count(".") < best[0].count(".")):
            best = (name, mod)
    return best


def _mlp_module(block: nn.Module, attention_name: str) -> tuple[str, nn.Module] | None:
    """The block's MLP child (one holding linear layers), else the block itself when its MLP
    layers sit directly in it (OPT's fc1/fc2)."""
    for name, mod in block.named_children():
        leaf = name.lower()
        if (name != attention_name and "norm" not in leaf and any(w in leaf for w in MLP_WORDS)
                and any(as_linear(n, m) for n, m in mod.named_modules())):
            return name, mod
    if any(as_linear(n, m) for n, m in block.named_children()):
        return "", block
    return None


def _linears(prefix: str, module: nn.Module) -> list[Linear]:
    out = []
    for name, mod in module.named_modules():
        lin = as_linear(f"{prefix}.{name}" if name else prefix, mod)
        if lin is not None:
            out.append(lin)
    return out


def _pick(linears: list[Linear], names: set[str]) -> Linear | None:
    hits = [lin for lin in linears if lin.leaf in names]
    return hits[0] if len(hits) == 1 else None


# -- fused layouts -------------------------------------------------------------------------------
def blocked_rows(heads: int, kv_heads: int, head_dim: int) -> dict[str, torch.Tensor | slice]:
    """[Q of all heads | K | V]: GPT-2's c_attn, MPT's Wqkv, Phi-3's qkv_proj, Baichuan's W_pack."""
    q, k = heads * head_dim, kv_heads * head_dim
    return {"q": slice(0, q), "k": slice(q, q + k), "v": slice(q + k, q + 2 * k)}


def grouped_rows(heads: int, kv_heads: int, head_dim: int) -> dict[str, torch.Tensor | slice]:
    """Per KV group [q_1..q_g, k, v]: GPT-NeoX/BLOOM (g = 1, per head [q, k, v]), Falcon."""
    g = heads // kv_heads
    rows = torch.arange(kv_heads * (g + 2) * head_dim).view(kv_heads, g + 2, head_dim)
    return {"q": rows[:, :g].flatten(), "k": rows[:, g].flatten(), "v": rows[:, g + 1].flatten()}


LAYOUTS = {"blocked": blocked_rows, "grouped": grouped_rows}


# -- discovery ----------------------------------------------------------------------------------
@dataclass
class Attention:
    """Where one layer's attention lives and the head counts its shapes imply."""

    q: Linear | None
    k: Linear | None
    v: Linear | None
    o: Linear
    fused: Linear | None
    heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int


def _attention(model_type: str, shape: Shape, linears: list[Linear]) -> Attention:
    names = ", ".join(lin.leaf for lin in linears) or "no linear layers"
    fused = _pick(linears, FUSED_NAMES)
    q, k, v = (_pick(linears, n) for n in (Q_NAMES, K_NAMES, V_NAMES))
    if not fused and not (q and k and v):
        raise _fail(model_type, f"no separate q/k/v or fused qkv projection among its attention's "
                                f"linear layers ({names})")
    if shape.heads is None:
        raise _fail(model_type, "the config names no attention head count "
                                f"(looked for {', '.join(HEAD_COUNTS)})")
    heads = shape.heads
    q_out = q.out_features if q else None
    head_dim = shape.head_dim or (q_out // heads if q_out else shape.hidden // heads)
    if q_out and q_out != heads * head_dim and q_out % heads == 0:
        head_dim = q_out // heads  # a config head_dim the projections do not use
    if fused:
        kv = shape.kv_heads
        if kv is None or fused.out_features != (heads + 2 * kv) * head_dim:
            kv = (fused.out_features // head_dim - heads) // 2  # (H + 2 kv) d rows (multi-query)
        v_dim = head_dim
        if fused.out_features != (heads + 2 * kv) * head_dim:
            raise _fail(model_type, f"fused {fused.leaf} has {fused.out_features} rows, not "
                                    f"(heads {heads} + 2 x kv heads {kv}) x head size {head_dim}")
    else:
        if q_out != heads * head_dim:
            raise _fail(model_type, f"{q.leaf} has {q_out} rows, not heads {heads} x head size {head_dim}")
        kv = shape.kv_heads if shape.kv_heads and k.out_features == shape.kv_heads * head_dim \
            else k.out_features // head_dim
        if k.out_features != kv * head_dim or v.out_features % kv:
            raise _fail(model_type, f"{k.leaf}/{v.leaf} rows ({k.out_features}, {v.out_features}) do "
                                    f"not split into {kv} key/value heads of size {head_dim}")
        v_dim = v.out_features // kv
    if kv < 1 or heads % kv:
        raise _fail(model_type, f"{heads} query heads do not group into {kv} key/value heads")
    o_candidates = [lin for lin in linears if lin.in_features == heads * v_dim
                    and lin not in (q, k, v, fused)]
    o = _pick(o_candidates, O_NAMES) or (o_candidates[0] if len(o_candidates) == 1 else None)
    if o is None:
        raise _fail(model_type, f"no output projection with {heads * v_dim} inputs among {names}")
    return Attention(q, k, v, o, fused, heads, kv, head_dim, v_dim)


def _attention_matrices(i: int, a: Attention, layout: str | None) -> list[Matrix]:
    def matrix(kind, lin, heads, axis, rows=slice(None)):
        return Matrix(f"layer.{i}.{kind}", i, kind, lin.module, lin.name, heads=heads,
                      block_axis=axis, transposed=lin.transposed, rows=rows)

    if a.fused is not None:
        rows = LAYOUTS[layout](a.heads, a.kv_heads, a.head_dim)
        qkv = [matrix(kind, a.fused, n, "out", rows[kind])
               for kind, n in (("q", a.heads), ("k", a.kv_heads), ("v", a.kv_heads))]
    else:
        qkv = [matrix("q", a.q, a.heads, "out"), matrix("k", a.k, a.kv_heads, "out"),
               matrix("v", a.v, a.kv_heads, "out")]
    return [*qkv, matrix("o", a.o, a.heads, "in")]


def _mlp_matrices(i: int, hidden: int, linears: list[Linear]) -> list[Matrix]:
    ins = [lin for lin in linears if lin.in_features == hidden
           and not (lin.out_features == hidden and lin.leaf in MLP_OUT_NAMES)]
    outs = [lin for lin in linears if lin.out_features == hidden and lin not in ins]
    if not ins or len(outs) != 1:
        return []
    found = []
    for lin in ins:
        suffix = "" if len(ins) == 1 else "." + lin.leaf.removesuffix("_proj")
        found.append(Matrix(f"layer.{i}.mlp_in{suffix}", i, "mlp_in", lin.module, lin.name,
                            transposed=lin.transposed))
    out = outs[0]
    found.append(Matrix(f"layer.{i}.mlp_out", i, "mlp_out", out.module, out.name, transposed=out.transposed))
    return found


@dataclass
class Discovery:
    matrices: list[Matrix]
    layout: str  # "separate", "fused blocked" or "fused grouped"
    notes: list[str]


def discover(model: nn.Module) -> Discovery:
    """Every prunable matrix of `model` found by structure, its head layout checked numerically."""
    model_type = getattr(model.config, "model_type", type(model).__name__)
    try:
        return _discover(model, model_type)
    except HarnessError:
        raise
    except Exception as exc:  # a structure discovery did not foresee: one line, not a traceback
        raise _fail(model_type, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from exc


def _discover(model: nn.Module, model_type: str) -> Discovery:
    shape = config_shape(model.config)
    found = layer_list(model, shape.layers)
    if found is None:
        raise _fail(model_type, _why_no_layers(model, shape.layers))
    path, layers = found
    notes: list[str] = []
    plans = []
    for i, block in enumerate(layers):
        att = _attention_module(block)
        if att is None:  # a hybrid model's recurrent/SSM layer: nothing spectral to prune there
            plans.append((i, block, None, None))
            continue
        att_name, att_mod = att
        a = _attention(model_type, shape, _linears(f"{path}.{i}.{att_name}", att_mod))
        plans.append((i, block, att_name, a))
    skipped = [i for i, _, _, a in plans if a is None]
    if skipped:
        notes.append(f"layers without attention skipped for q/k/v/o: {skipped}")
    if all(a is None for *_, a in plans):
        raise _fail(model_type, "no layer has an attention module with q/k/v or fused qkv projections")
    # one check per kind of attention (a hybrid may mix fused and separate projections)
    layouts: dict[bool, str] = {}
    for i, _, _, a in plans:
        if a is not None and (a.fused is None) not in layouts:
            layouts[a.fused is None] = _verified_layout(model, model_type, i, a)
    matrices: list[Matrix] = []
    moe = False
    for i, block, att_name, a in plans:
        if a is not None:
            layout = layouts[a.fused is None]
            matrices += _attention_matrices(i, a, None if layout == "separate" else layout)
        mlp = _mlp_module(block, att_name or "")
        if mlp is None:
            continue
        mlp_name, mlp_mod = mlp
        if mlp_name and any("expert" in n for n, _ in mlp_mod.named_modules()):
            moe = True
            continue
        if mlp_name:
            linears = _linears(f"{path}.{i}.{mlp_name}", mlp_mod)
        else:
            linears = [lin for n, mod in mlp_mod.named_children()
                       if (lin := as_linear(f"{path}.{i}.{n}", mod)) is not None]
        hidden = shape.hidden or next(a.o.out_features for *_, a in plans if a is not None)
        matrices += _mlp_matrices(i, hidden, linears)
    if moe:
        notes.append("mixture-of-experts MLPs skipped (experts are not single matrices)")
    if not any(m.kind == "mlp_in" for m in matrices):
        notes.append("no dense MLP found: attention matrices only")
    return Discovery(matrices, " + ".join(v if v == "separate" else f"fused {v}" for v in layouts.values()),
                     notes)


def _verified_layout(model: nn.Module, model_type: str, layer: int, a: Attention) -> str:
    """The first candidate head layout of `layer` that the forward confirms."""
    problems = []
    for candidate in ["separate"] if a.fused is None else list(LAYOUTS):
        attn = _attention_matrices(layer, a, None if candidate == "separate" else candidate)
        try:
            problem = check_heads(model, layer, attn)
        except Exception as exc:  # a forward that breaks on the probe cannot vouch for a layout
            problem = f"the forward failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
        if problem is None:
            return candidate
        problems.append(f"{candidate}: {problem}")
    raise _fail(model_type, f"no head layout of layer {layer} matches the model's forward ("
                + "; ".join(problems) + ")")


# -- the numerical check -------------------------------------------------------------------------
def _cache_layer(cache, i: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(keys, values) of layer i, (B, kv_heads, T, d), from whichever cache format the model uses."""
    try:
        if hasattr(cache, "layers"):
            layer = cache.layers[i]
            return layer.keys, layer.values
        if hasattr(cache, "key_cache"):
            return cache.key_cache[i], cache.value_cache[i]
        return cache[i][0], cache[i][1]
    except (AttributeError, IndexError, KeyError, TypeError):
        return None


def _probe(model: nn.Module, o: Matrix, layer: int, ids: torch.Tensor):
    seen = {}
    handle = o.module.register_forward_hook(lambda mod, args, out: seen.__setitem__("x", args[0].detach()))
    try:
        with torch.no_grad():
            try:
                out = model(input_ids=ids, use_cache=True)
            except Exception:  # a forward without a (usable) cache: O's input alone is checked
                out = model(input_ids=ids, use_cache=False)
    finally:
        handle.remove()
    cache = out.get("cache") if hasattr(out, "get") else None  # transformers 5; older: past_key_values
    kv = _cache_layer(cache if cache is not None else getattr(out, "past_key_values", None), layer)
    x = o.input_blocks(seen["x"].float())  # (B, T, H, d)
    return x, kv


def _changed(before: torch.Tensor, after: torch.Tensor, head_axis: int) -> torch.Tensor:
    """Largest change per head, relative to the largest anywhere: (heads,)."""
    diff = (after.float() - before.float()).abs().movedim(head_axis, 0).flatten(1).amax(1)
    return (diff / diff.max().clamp_min(1e-30)).cpu()


def check_heads(model: nn.Module, layer: int, attention: list[Matrix], tol: float = 1e-3) -> str | None:
    """None if `attention` (q, k, v, o of `layer`) splits heads the way the forward does, else
    what disagreed. Flipping the sign of head h's rows (weight and bias) of Q, K or V must
    change O's input for exactly the query heads that read h (h's group under grouped-query
    attention), the cached keys of head h only when it is K, the cached values only when V."""
    q, k, v, o = attention
    n_vocab = model.get_input_embeddings().num_embeddings
    device = next(model.parameters()).device
    ids = torch.randint(0, min(n_vocab, 1000), (1, 8), generator=torch.Generator().manual_seed(0))
    ids = ids.to(device)
    group = q.heads // k.heads
    x0, kv0 = _probe(model, o, layer, ids)
    for m in (q, k, v):
        for h in sorted({0, m.heads - 1}):
            expect = torch.zeros(q.heads, dtype=torch.bool)
            expect[h * (group if m.kind != "q" else 1):(h + 1) * (group if m.kind != "q" else 1)] = True
            weight = m.module.weight.data.clone()
            bias = None if getattr(m.module, "bias", None) is None else m.module.bias.data.clone()
            try:
                with torch.no_grad():
                    blocks = m.to_blocks(m.weight())
                    blocks[h] = -blocks[h]
                    m.write_weight(m.from_blocks(blocks))
                    if bias is not None:
                        b = m.output_blocks(m.bias())
                        b[h] = -b[h]
                        m.module.bias.data[m.rows] = b.flatten()
                x1, kv1 = _probe(model, o, layer, ids)
            finally:
                m.module.weight.data.copy_(weight)
                if bias is not None:
                    m.module.bias.data.copy_(bias)
            heads = _changed(x0, x1, 2)
            if not (heads[expect] > tol).all() or (heads[~expect] > tol).any():
                moved = [int(i) for i in torch.nonzero(heads > tol).flatten()]
                return f"flipping {m.kind} head {h} changed attention heads {moved}"
            if kv0 is not None and kv1 is not None:
                for name, before, after in (("k", kv0[0], kv1[0]), ("v", kv0[1], kv1[1])):
                    if before.shape != after.shape or before.dim() != 4 or before.shape[1] != k.heads:
                        continue
                    cached = _changed(before, after, 1) if m.kind == name else None
                    if m.kind != name and not torch.equal(before, after):
                        return f"flipping {m.kind} head {h} changed the cached {name}"
                    if cached is not None and (cached[h] <= tol or (cached > tol).sum() != 1):
                        return f"flipping {m.kind} head {h} changed cached {name} heads " \
                               f"{[int(i) for i in torch.nonzero(cached > tol).flatten()]}"
    return None
