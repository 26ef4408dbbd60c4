"""Built-in plugins of eigenharness.

Each module registers through the `eigenharness` entry-point group and the hooks in
`harness/hookspecs.py`, exactly as a third-party package would; the core never imports them.
"""
