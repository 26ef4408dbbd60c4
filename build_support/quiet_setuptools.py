"""setuptools' build backend, without one notice that does not apply to this layout.

The built-in plugins and tasks live in top-level ``plugins/`` and ``tasks/`` folders but install
as ``eigenharness_plugins`` and ``eigenharness_tasks`` (a ``package-dir`` remap), so no generic
top-level ``plugins`` or ``tasks`` package lands in site-packages. For any remapped editable
install setuptools prints a multi-line "Please be careful with folders in your working directory
with the same name as your package" notice, even under ``pip -q``. No folder here shares an
installed package's name (``harness/`` *is* ``harness``), so the notice is noise on every
``make install``; this wrapper filters that one message and passes everything else through.
"""

from __future__ import annotations

import warnings
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the whole PEP 517/660 interface)

_NOTICE = r"(?s).*Please be careful with folders in your working directory"


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    """setuptools' editable build with the remap notice filtered (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NOTICE)
        return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
