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
