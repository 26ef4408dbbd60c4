"""Regenerate the README's "Supported models" table: every decoder-only family in transformers'
causal-LM auto mapping, built tiny and offline, through discovery, eigen, restore and --save.

    python scripts/coverage_table.py            # print the table
    python scripts/coverage_table.py --readme   # and rewrite it in README.md between the markers
    python scripts/coverage_table.py llama gpt_neox    # only these families

Takes a few minutes on two cores (about a second per family, one thread).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("EIGENHARNESS_PLUGINS", "")
MAX_PARAMETERS = 20_000_000
START, END = "<!-- coverage:start -->", "<!-- coverage:end -->"


def not_decoder_only(model_type: str, config) -> str | None:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    seq2seq = model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES
    if getattr(config, "is_encoder_decoder", False) or seq2seq:
        return "encoder-decoder"
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder (masked LM) used as a decoder"
    return None


def row(model_type: str) -> tuple[str, str, str, str]:
    """(family, supported, matrices found, reason or notes)."""
    import torch

    from harness import coverage
    from harness.tiny_models import tiny_config, tiny_model

    try:
        config = tiny_config(model_type)
    except Exception as exc:
        return model_type, "skipped", "", f"config does not build tiny: {_first_line(exc)}"
    why = not_decoder_only(model_type, config)
    if why:
        return model_type, "skipped", "", f"not decoder-only: {why}"
    try:
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):  # sizes the tiny fields do not reach stay large: skip those
            n = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
        if n > MAX_PARAMETERS:
            return model_type, "skipped", "", f"not tiny with common size fields ({n / 1e6:.0f}M parameters)"
        model = tiny_model(model_type, dtype=torch.float32)
    except Exception as exc:
        return model_type, "skipped", "", f"does not build tiny offline: {_first_line(exc)}"
    r = coverage.check_family(model)
    if r.problem:
        reason = r.problem.split("could not be sure of it: ")[-1].split("; register it")[0]
        return model_type, "no", r.matrices, reason
    checks = [("eigen", r.eigen), ("restore bit-exact", r.restore_exact)]
    failed = [name for name, ok in checks if not ok]
    if not r.save.startswith("yes"):
        failed.append(f"--save: {r.save.removeprefix('no: ')}")
    how = r.architecture.split(" ")[-1].strip("()")
    if failed:
        return model_type, "no", r.matrices, "; ".join(failed)
    notes = [how] + ([r.save.removeprefix("yes ")] if r.save != "yes" else [])
    return model_type, "yes", r.matrices, "; ".join(notes)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:90] if text else ''}".replace("|", "/")


def table(rows) -> str:
    counts = {k: sum(r[1] == k for r in rows) for k in ("yes", "no", "skipped")}
    lines = [
        f"{counts['yes']} families supported, {counts['no']} not, {counts['skipped']} skipped "
        "(not decoder-only, or not buildable tiny and offline). Each supported family: matrices "
        "found (heads per kind, checked against the forward), eigen (gradient scores on random "
        "batches, 20% of all matrices pruned with bias compensation) changes the logits, restore "
        "is bit-exact, and `--save` reloads with plain `AutoModelForCausalLM` to the same logits. "
        "Reasons describe the tiny 2-layer build: a hybrid whose first layers are recurrent shows "
        "none of its attention layers there.",
        "",
        "| family | supported | matrices found | architecture / reason |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*")
    parser.add_argument("--readme", action="store_true", help="rewrite the table in README.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)  # tiny matrices: threads only add contention
    families = args.families or sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    rows, start = [], time.perf_counter()
    for model_type in families:
        t0 = time.perf_counter()
        try:
            rows.append(row(model_type))
        except Exception as exc:  # one family's surprise must not cost the whole table
            rows.append((model_type, "no", "", f"check crashed: {_first_line(exc)}"))
        print(f"{model_type}: {rows[-1][1]} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    text = table(rows)
    print(text)
    print(f"{len(rows)} families in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if args.readme:
        readme = Path(__file__).resolve().parent.parent / "README.md"
        old = readme.read_text()
        if START not in old:
            raise SystemExit(f"README.md has no {START} marker")
        head, _, rest = old.partition(START)
        _, _, tail = rest.partition(END)
        readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
