"""One family through the whole path, tiny: matrices found, eigen runs, restore, --save reload.

Used by scripts/coverage_table.py (the docs page "Supported models", docs/supported-models.md) and by
tests/test_discovery.py, so the table and the tests check the same things the same way.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness import selection, spectral
from harness.calibration import IGNORE, Batch
from harness.errors import HarnessError
from harness.export import save_pruned
from harness.strategy import PruneRequest, Strategy, spectral_apply


def random_batches(vocab: int, n_batches: int = 1, batch: int = 2, length: int = 8, seed: int = 0):
    """Right-padded random-token loss batches (the last three real tokens are targets)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        ids = torch.randint(3, vocab, (batch, length), generator=gen)
        mask = torch.ones(batch, length, dtype=torch.long)
        mask[0, length - 2:] = 0
        ids[mask == 0] = 0
        labels = torch.full_like(ids, IGNORE)
        for b in range(batch):
            n = int(mask[b].sum())
            labels[b, n - 3:n] = ids[b, n - 3:n]
        out.append(Batch(ids, mask, labels))
    return out


def tokenizer(vocab: int):
    """A word-level tokenizer over `vocab` made-up tokens: enough for save_pretrained."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<bos>": 1, "<eos>": 2} | {f"t{i}": i for i in range(3, vocab)}
    tok = Tokenizer(models.WordLevel(words, unk_token="<pad>"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits.float()


@dataclass
class Report:
    architecture: str = ""
    matrices: str = ""  # "q/k/v/o heads 4/2/2/4 (separate); mlp 2 in + 1 out"
    eigen: bool = False
    restore_exact: bool = False
    save: str = ""  # "yes", "yes (--no-compensate: ...)" or the failure
    problem: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def supported(self) -> bool:
        return self.eigen and self.restore_exact and self.save.startswith("yes") and not self.problem


def describe(matrices) -> str:
    heads = {}
    for m in matrices:
        heads.setdefault(m.kind, m.heads)
    attn = "/".join(str(heads[k]) for k in ("q", "k", "v", "o") if k in heads)
    fused = any(m.kind == "q" and not (isinstance(m.rows, slice) and m.rows == slice(None))
                for m in matrices)
    n_in = len({m.id.split(".", 2)[-1] for m in matrices if m.kind == "mlp_in"})
    text = f"q/k/v/o heads {attn}{' (fused qkv)' if fused else ''}"
    return text + (f"; mlp {n_in} in + 1 out" if n_in else "; no dense mlp")


def check_family(model, save_dir: Path | None = None) -> Report:
    """Run the tiny model through discovery (or its registered architecture), eigen scoring
    and pruning with compensation, restore, and save + plain-transformers reload."""
    from transformers import AutoModelForCausalLM

    report = Report(architecture=selection.architecture(model))
    vocab = model.get_input_embeddings().num_embeddings
    try:
        matrices = selection.candidates(model)
    except HarnessError as exc:
        report.problem = str(exc)
        return report
    except Exception as exc:  # discovery must fail in one line, but the table must not stop
        report.problem = f"discovery crashed: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
        return report
    report.matrices = describe(matrices)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = random_batches(vocab, seed=1)[0].input_ids
    original = logits(model, ids)

    def prune(compensate: bool):
        strategy = Strategy("coverage", "", matrices="all", scorer="gradient", compensate=compensate)
        request = PruneRequest(model=model, matrices=matrices, fraction=0.2, seed=0, strategy=strategy,
                               batches=random_batches(vocab), spectrum=spectral.SpectrumCache())
        return spectral_apply(request)

    try:
        edit = prune(True)
    except Exception as exc:  # a family whose forward the scorer cannot hook
        report.problem = f"eigen failed: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
        return report
    pruned = logits(model, ids)
    report.eigen = edit.n_pruned > 0 and not torch.equal(pruned, original) and bool(pruned.isfinite().all())
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(save_dir or tmp) / "pruned"
        try:
            try:
                save_pruned(model, tokenizer(vocab), matrices, edit, directory)
                report.save = "yes"
            except HarnessError as exc:
                if "--no-compensate" not in str(exc):
                    raise
                edit.restore()
                edit, pruned = prune(False), None
                pruned = logits(model, ids)
                save_pruned(model, tokenizer(vocab), matrices, edit, directory)
                key = str(exc).split(" cannot store ")[-1].split(" ")[0]
                report.save = f"yes with --no-compensate (compensation refused: no config switch for " \
                    f"{'.'.join(key.split('.')[-2:])})"
            reloaded = AutoModelForCausalLM.from_pretrained(directory, dtype=model.dtype).eval()
            same = torch.allclose(logits(reloaded, ids), pruned, atol=1e-4, rtol=1e-4)
            if not same:
                report.save = "no: reloaded logits differ"
        except Exception as exc:
            report.save = f"no: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
    edit.restore()
    after = model.state_dict()
    report.restore_exact = before.keys() == after.keys() and all(
        torch.equal(before[k], after[k]) for k in before)
    return report
