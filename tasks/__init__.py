"""The project's lm-eval task definitions (YAML) and their data generators.

This folder is handed to lm-eval's `TaskManager(include_path=...)` as it is.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).parent
