"""The package configuration of pyproject.toml: every importable folder installed, under its
installed name, so a wheel holds what a source tree runs."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
INSTALLED_AS = {"harness": "harness", "plugins": "eigenharness_plugins", "tasks": "eigenharness_tasks"}


def test_every_folder_holding_python_is_a_listed_package():
    """A folder with Python files that the list leaves out is dropped from the wheel (setuptools
    warns "Package would be ignored"): tasks/arithmetic's data generator once was."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {name: folder for folder, name in INSTALLED_AS.items()}
    found = set()
    for folder, name in INSTALLED_AS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.parent.relative_to(ROOT / folder).parts
            if "__pycache__" not in parts:
                found.add(".".join([name, *parts]))
    assert sorted(config["packages"]) == sorted(found)


def _source_copy(tmp_path: Path) -> Path:
    """The files a build reads, copied, so building leaves no egg-info or build/ in the repo."""
    import shutil

    copy = tmp_path / "src"
    copy.mkdir()
    for name in ("pyproject.toml", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    for folder in ("build_support", *INSTALLED_AS):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _backend(source: Path, call: str) -> str:
    """Run one PEP 517 hook of the declared backend the way pip does: in a fresh process, with
    backend-path on sys.path, every warning shown."""
    import subprocess
    import sys

    tomllib = pytest.importorskip("tomllib")
    system = tomllib.loads((source / "pyproject.toml").read_text())["build-system"]
    code = (f"import sys; sys.path[:0] = {system['backend-path']!r}; "
            f"import {system['build-backend']} as backend; print(backend.{call})")
    done = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=source,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_editable_install_is_quiet_and_the_sdist_can_rebuild(tmp_path):
    """`make install` is an editable install of a remapped layout (plugins/ installs as
    eigenharness_plugins); setuptools prints a multi-line notice for every such install, even
    under pip -q. The in-tree backend filters that notice, and the sdist must carry the backend,
    or nobody can build a wheel from it."""
    source = _source_copy(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    log = _backend(source, f"build_editable({str(out)!r})")
    assert "Please be careful with folders" not in log
    assert list(out.glob("eigenharness-*.whl"))
    _backend(source, f"build_sdist({str(out)!r})")
    import tarfile

    with tarfile.open(next(out.glob("eigenharness-*.tar.gz"))) as sdist:
        names = sdist.getnames()
    assert any(name.endswith("build_support/quiet_setuptools.py") for name in names)
